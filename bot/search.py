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
    """Answer only when the best passage holds enough of what the question is about.

    Coverage is the share of the question's information (idf mass of its distinct words) that
    the passage holds; a word the knowledge lacks weighs ``unknown_weight`` times the rarest
    word's idf (it may be small talk or a typo as well as the real subject). A long question may
    hold much the passage does not, so a lower coverage is enough when the matched mass is at
    least ``min_matched`` rarest words. A question about a topic the knowledge does not cover
    (``out_of_scope.txt``) is refused unless the passage names it; one naming only a sibling
    product (``siblings.tsv``) needs ``sibling_coverage``. Calibrated on the dev set and the
    teaching half of the labelled real questions."""

    min_coverage: float = 0.4
    weak_coverage: float = 0.15
    min_matched: float = 1.0
    unknown_weight: float = 0.5
    sibling_coverage: float = 0.7


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


@dataclass(frozen=True)
class Document:
    """One BM25 document: a passage's answer text, or one of the questions it answers."""

    passage: int
    tokens: tuple[str, ...]
    is_answer: bool


def passage_documents(index: int, passage: Passage, tokenizer: Tokenizer) -> list[Document]:
    """A passage is searched as several documents: its heading chain with its answer, and each
    question it answers (its own heading, every similar question) on its own, so that a short
    question is matched against short questions instead of being diluted in a long answer."""
    answer = Document(index, tuple(tokenizer.tokens(passage.question) + tokenizer.tokens(passage.answer)), True)
    questions = [Document(index, tuple(tokenizer.tokens(q)), False) for q in (passage.headings[-1], *passage.similar)]
    return [answer, *[q for q in questions if q.tokens]]


class Index:
    """The searchable form of a knowledge folder's passages.

    Ranking: BM25Plus over all documents; a passage scores as its best document, an answer-text
    match weighing ``answer_weight`` times a question match. Refusal: see ``AbstainRule``."""

    def __init__(
        self,
        passages: Sequence[Passage],
        tokenizer: Tokenizer | None = None,
        params: BM25Params = BM25Params(),
        rule: AbstainRule = AbstainRule(),
        answer_weight: float = 1.15,
    ) -> None:
        self.passages = tuple(passages)
        self.tokenizer = tokenizer or Tokenizer()
        self.rule = rule
        self.documents = [d for i, p in enumerate(self.passages) for d in passage_documents(i, p, self.tokenizer)]
        self.engine = BM25Plus([d.tokens for d in self.documents], params)
        self._owner = np.array([d.passage for d in self.documents], dtype=np.int64)
        self._weight = np.array([answer_weight if d.is_answer else 1.0 for d in self.documents])
        words: list[set[str]] = [set() for _ in self.passages]
        for document in self.documents:
            words[document.passage].update(document.tokens)
        self._vocabulary = [frozenset(w) for w in words]
        self._content = [frozenset(d.tokens) for d in self.documents if d.is_answer]
        self.rarest_idf = math.log(self.engine.size + 1)  # BM25Plus idf of a word found once
        self.unknown_weight = rule.unknown_weight * self.rarest_idf
        self.out_of_scope = self.tokenizer.vocabulary.out_of_scope

    def weight(self, token: str) -> float:
        """How much a question word says: its idf, or a fixed weight for words the knowledge lacks."""
        return self.engine.idf.get(token, self.unknown_weight)

    def coverage(self, tokens: Sequence[str], vocabulary: frozenset[str]) -> float:
        """Share of the question's information (idf mass of its distinct words) found in ``vocabulary``."""
        unique = set(tokens)
        total = sum(self.weight(t) for t in unique)
        return sum(self.weight(t) for t in unique & vocabulary) / total if total else 0.0

    def passage_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """Each passage's score: its best document's weighted BM25Plus score."""
        scores = self.engine.scores(tokens) * self._weight
        best = np.full(len(self.passages), -np.inf)
        np.maximum.at(best, self._owner, scores)
        return best

    def _foreign(self, token: str, question: set[str], passage: int) -> bool:
        """A topic the knowledge does not cover: out of scope unless the passage's own text (heading
        or answer, not its similar questions) names it, or the question holds one of its exception
        words. A knowledge folder that does cover the topic thus answers it."""
        if token not in self.out_of_scope or token in self._content[passage]:
            return False
        return not (question & self.out_of_scope[token])

    def answerable(self, tokens: Sequence[str], passage: int) -> bool:
        """The refusal rule (see ``AbstainRule``) for the best passage."""
        rule, vocabulary = self.rule, self._vocabulary[passage]
        unique = set(tokens)
        if any(self._foreign(t, unique, passage) for t in unique):
            return False
        coverage = self.coverage(unique, vocabulary)
        siblings = self.tokenizer.vocabulary.siblings
        if any(t in siblings and siblings[t] not in unique for t in unique) and coverage < rule.sibling_coverage:
            return False
        matched = sum(self.weight(t) for t in unique & vocabulary) / self.rarest_idf
        return coverage >= rule.min_coverage or (coverage >= rule.weak_coverage and matched >= rule.min_matched)

    def search(self, question: str, k: int = 3) -> SearchResult:
        tokens = tuple(self.tokenizer.tokens(question))
        if not tokens:
            return SearchResult(question, tokens, (), False)
        scores = self.passage_scores(tokens)
        k = min(k, len(self.passages))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(self.passages) else np.arange(len(self.passages))
        top = top[np.lexsort((top, -scores[top]))]
        hits = tuple(
            Hit(self.passages[i], float(scores[i]), self.coverage(tokens, self._vocabulary[i])) for i in top
        )
        return SearchResult(question, tokens, hits, self.answerable(tokens, int(top[0])))
