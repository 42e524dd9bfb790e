"""BM25 over passages, built once, searched many times; decides when nothing is good enough.

Ranking is exactly rank-bm25's ``BM25Plus`` (idf = log((N+1)/df), always positive, so a word in
half of a few dozen passages still counts; δ keeps long passages from being over-penalised),
computed through an inverted index instead of a full scan. Refusal looks at what was matched:
the share of the question's information (idf mass) that the best passage covers, which does not
depend on the corpus size or on raw BM25 magnitudes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .knowledge import Passage
from .text import Tokenizer


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.5
    b: float = 0.75
    delta: float = 1.0


@dataclass(frozen=True)
class AbstainRule:
    """Answer only when the best passage covers enough of what the question is about."""

    min_coverage: float = 0.5
    min_matched_terms: int = 1


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    coverage: float


@dataclass(frozen=True)
class SearchResult:
    question: str
    tokens: tuple[str, ...]
    hits: tuple[Hit, ...]
    answered: bool


class BM25Plus:
    """rank-bm25's BM25Plus scores via postings: same idf, k1, b, δ; same numbers as get_scores."""

    def __init__(self, corpus: Sequence[Sequence[str]], params: BM25Params = BM25Params()) -> None:
        self.params = params
        self.size = len(corpus)
        lengths = np.array([len(doc) for doc in corpus], dtype=np.float64)
        self.avgdl = float(lengths.sum() / self.size) if self.size else 0.0
        norm = params.k1 * (1 - params.b + params.b * lengths / self.avgdl) if self.avgdl else lengths + params.k1
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for index, doc in enumerate(corpus):
            for term, freq in Counter(doc).items():
                docs, freqs = postings.setdefault(term, ([], []))
                docs.append(index)
                freqs.append(freq)
        self.idf: dict[str, float] = {}
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, (docs, freqs) in postings.items():
            idf = math.log(self.size + 1) - math.log(len(docs))
            doc_ids = np.array(docs, dtype=np.int32)
            tf = np.array(freqs, dtype=np.float64)
            self.idf[term] = idf
            self.postings[term] = (doc_ids, idf * (tf * (params.k1 + 1)) / (norm[doc_ids] + tf))

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """Score of every document for the query tokens (repeats count, as in rank-bm25)."""
        scores = np.full(self.size, sum(self.idf.get(term, 0.0) for term in query) * self.params.delta)
        for term in query:
            posting = self.postings.get(term)
            if posting is not None:
                scores[posting[0]] += posting[1]
        return scores

    def top(self, query: Sequence[str], k: int) -> list[tuple[int, float]]:
        scores = self.scores(query)
        k = min(k, self.size)
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k] if k < self.size else np.arange(self.size)
        best = best[np.lexsort((best, -scores[best]))]
        return [(int(i), float(scores[i])) for i in best]


def passage_document(passage: Passage, tokenizer: Tokenizer, heading_weight: int = 2) -> list[str]:
    """What BM25 sees of a passage: heading chain, its own heading again, answer, similar questions."""
    own_heading = tokenizer.tokens(passage.headings[-1]) * (heading_weight - 1)
    parts = [passage.question, passage.answer, *passage.similar]
    return [token for part in parts for token in tokenizer.tokens(part)] + own_heading


class Index:
    """The searchable form of a knowledge folder's passages."""

    def __init__(
        self,
        passages: Sequence[Passage],
        tokenizer: Tokenizer | None = None,
        params: BM25Params = BM25Params(),
        rule: AbstainRule = AbstainRule(),
    ) -> None:
        self.passages = tuple(passages)
        self.tokenizer = tokenizer or Tokenizer()
        self.rule = rule
        self.documents = [passage_document(p, self.tokenizer) for p in self.passages]
        self.vocabularies = [frozenset(doc) for doc in self.documents]
        self.engine = BM25Plus(self.documents, params)
        self.unknown_weight = math.log(self.engine.size + 1)  # as rare as a word can be

    def weight(self, token: str) -> float:
        """How much a question word says: its idf, or the top idf for words the knowledge lacks."""
        return self.engine.idf.get(token, self.unknown_weight)

    def coverage(self, tokens: Sequence[str], document: int) -> float:
        unique = set(tokens)
        total = sum(self.weight(t) for t in unique)
        matched = sum(self.weight(t) for t in unique & self.vocabularies[document])
        return matched / total if total else 0.0

    def search(self, question: str, k: int = 3) -> SearchResult:
        tokens = tuple(self.tokenizer.tokens(question))
        if not tokens:
            return SearchResult(question, tokens, (), False)
        ranked = self.engine.top(tokens, k)
        hits = tuple(Hit(self.passages[i], score, self.coverage(tokens, i)) for i, score in ranked)
        answered = bool(
            hits
            and hits[0].coverage >= self.rule.min_coverage
            and len(set(tokens) & self.vocabularies[ranked[0][0]]) >= self.rule.min_matched_terms
        )
        return SearchResult(question, tokens, hits, answered)
