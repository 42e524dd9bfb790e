"""BM25 over passages, built once, searched many times; decides when nothing is good enough.

Scores are rank-bm25's ``BM25Plus`` (idf = log((N+1)/df), always positive, so a word in half of
a few dozen passages still counts; δ keeps long passages from being over-penalised), computed
through postings instead of a full scan. A passage is several documents (its answer, and each
question it answers) and scores as its best one. Refusal looks at what was matched: the share of
the question's information (idf mass) the best passage holds, which does not depend on the
corpus size or on raw BM25 magnitudes.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Sequence

import numpy as np

from .knowledge import Passage
from .text import Tokenizer


SCORE_TYPE = np.float32  # half the memory traffic of float64; ranks agree with rank-bm25 to ~1e-7
DENSE_SHARE = 16  # a word in at least 1/16 of the documents is stored as a full row ...
DENSE_MIN_DOCUMENTS = 4096  # ... once the corpus is large enough for that to pay
VOCABULARIES_KEPT = 4096  # passages whose word sets are kept between questions
STORY_CHARS = 40  # a question this long, of several sentences, is a story ...
_SENTENCE_END = re.compile(r"[。！？!?；;\n]+")  # ... whose last sentence is what is asked


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
    (``out_of_scope.txt``) is refused unless the passage says it answers it, or the question is long
    (``passing_words`` words or more) and the passage covers ``passing_coverage`` of it, or it is a
    story (``story_words`` words or more) of which the passage holds ``long_matched`` rarest words:
    there the topic is a passing mention ("…打客服电话也说不清"); one naming only a sibling
    product (``siblings.tsv``) is answered only by a passage whose text names the sibling too (the
    当前交易不支持花呗 notice), with ``sibling_coverage`` and, besides the sibling's name,
    ``sibling_matched`` rarest words matched. A question whose matched words, leaving aside the
    words users put in every question (``generic.txt``), say less than ``vague_matched`` rarest
    words ("借呗", "借呗分期多久") is too vague to answer. A long story matches little of itself
    but much of a passage: ``long_matched`` rarest words at ``long_coverage`` suffice. Calibrated
    on the dev set, the teaching halves of the labelled real questions and the odd halves of the
    held-out sets."""

    min_coverage: float = 0.5
    weak_coverage: float = 0.15
    min_matched: float = 1.0
    unknown_weight: float = 0.5
    sibling_coverage: float = 0.7
    sibling_matched: float = 1.5
    vague_matched: float = 0.3
    passing_words: int = 8
    passing_coverage: float = 0.7
    story_words: int = 15
    long_coverage: float = 0.08
    long_matched: float = 2.0


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    coverage: float


class Refusal(str, Enum):
    """Why a question gets no passage: the reply can say so."""

    EMPTY = "empty"  # nothing to search for: blank, punctuation, emoji, only filler words
    VAGUE = "vague"  # what matched says too little ("借呗", "借呗分期多久")
    FOREIGN_TOPIC = "foreign_topic"  # a topic this knowledge does not cover (利息, 开通, …)
    SIBLING = "sibling"  # about 花呗 alone; the articles mention it only in passing
    NO_MATCH = "no_match"  # too little of the question is in any passage


@dataclass(frozen=True)
class SearchResult:
    question: str
    tokens: tuple[str, ...]
    hits: tuple[Hit, ...]
    refusal: Refusal | None

    @property
    def answered(self) -> bool:
        return self.refusal is None


class BM25Plus:
    """rank-bm25's BM25Plus scores via postings: same idf, k1, b, δ; same numbers as get_scores.

    ``weights`` (optional, one per document) multiply a document's whole score: a field weight."""

    def __init__(
        self,
        corpus: Sequence[Sequence[str]],
        params: BM25Params = BM25Params(),
        weights: Sequence[float] | None = None,
    ) -> None:
        self.params = params
        self.size = len(corpus)
        self.weights = np.ones(self.size) if weights is None else np.asarray(weights, dtype=np.float64)
        lengths = np.fromiter((len(doc) for doc in corpus), dtype=np.float64, count=self.size)
        self.avgdl = float(lengths.sum() / self.size) if self.size else 0.0
        norm = params.k1 * (1 - params.b + params.b * lengths / self.avgdl) if self.avgdl else lengths + params.k1
        term_ids: dict[str, int] = {}
        terms, documents, frequencies = array("i"), array("i"), array("i")  # compact, not lists of ints
        for index, doc in enumerate(corpus):
            for term, freq in Counter(doc).items():
                terms.append(term_ids.setdefault(term, len(term_ids)))
                documents.append(index)
                frequencies.append(freq)
        order = np.argsort(np.frombuffer(terms, dtype=np.int32), kind="stable")
        doc_ids_all = np.frombuffer(documents, dtype=np.int32)[order]
        tf_all = np.frombuffer(frequencies, dtype=np.int32)[order].astype(np.float64)
        bounds = np.searchsorted(np.frombuffer(terms, dtype=np.int32)[order], np.arange(len(term_ids) + 1))
        self.idf: dict[str, float] = {}
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.dense: dict[str, np.ndarray] = {}  # words in many documents: one full row, added in one sweep
        for term, number in term_ids.items():
            doc_ids, tf = doc_ids_all[bounds[number]:bounds[number + 1]], tf_all[bounds[number]:bounds[number + 1]]
            idf = math.log(self.size + 1) - math.log(len(doc_ids))
            self.idf[term] = idf
            contribution = (self.weights[doc_ids] * idf * (tf * (params.k1 + 1)) / (norm[doc_ids] + tf)).astype(SCORE_TYPE)
            if len(doc_ids) * DENSE_SHARE >= self.size >= DENSE_MIN_DOCUMENTS:
                self.dense[term] = np.zeros(self.size, dtype=SCORE_TYPE)
                self.dense[term][doc_ids] = contribution
            else:
                self.postings[term] = (doc_ids.copy(), contribution)

    def base(self, query: Sequence[str]) -> float:
        """What every (unweighted) document gets for the query alone: BM25Plus's δ term."""
        return sum(self.idf.get(term, 0.0) for term in query) * self.params.delta

    def matched(self, query: Sequence[str]) -> np.ndarray:
        """Every document's score without the δ term (repeated query words count, as in rank-bm25)."""
        scores = np.zeros(self.size, dtype=SCORE_TYPE)
        sparse = [self.postings[term] for term in query if term in self.postings]
        if sparse:
            np.add.at(scores, np.concatenate([ids for ids, _ in sparse]), np.concatenate([c for _, c in sparse]))
        for term in query:
            if term in self.dense:
                scores += self.dense[term]
        return scores

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """Score of every document, as rank-bm25's ``get_scores`` (times its weight)."""
        return self.matched(query) + self.base(query) * self.weights

    def top(self, query: Sequence[str], k: int) -> list[tuple[int, float]]:
        scores = self.scores(query)
        k = min(k, self.size)
        if k <= 0:
            return []
        best = np.argpartition(scores, -k)[-k:] if k < self.size else np.arange(self.size)
        best = best[np.lexsort((best, -scores[best]))]
        return [(int(i), float(scores[i])) for i in best]


def passage_documents(passage: Passage, tokenizer: Tokenizer) -> list[tuple[str, ...]]:
    """A passage is searched as several documents: first its heading chain with its answer, then
    each question it answers (its own heading, every similar question) on its own, so that a
    short question is matched against short questions instead of being diluted in a long answer."""
    answer = tuple(tokenizer.tokens(passage.question) + tokenizer.tokens(passage.answer))
    questions = (tuple(tokenizer.tokens(q)) for q in (passage.headings[-1], *passage.similar))
    return [answer, *[q for q in questions if q]]


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
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.passages = tuple(passages)
        self.tokenizer = tokenizer or Tokenizer()
        self.rule = rule
        self.answer_weight = answer_weight
        per_passage = []
        for number, passage in enumerate(self.passages):
            per_passage.append(passage_documents(passage, self.tokenizer))
            if progress and number % 1000 == 0:
                progress(number, len(self.passages))
        if progress:
            progress(len(self.passages), len(self.passages))
        # Answer documents first, document i answering passage i; then every passage's questions.
        documents = [docs[0] for docs in per_passage] + [q for docs in per_passage for q in docs[1:]]
        counts = np.array([len(docs) - 1 for docs in per_passage], dtype=np.int64)
        self._question_end = len(self.passages) + np.cumsum(counts)
        self._owner = np.concatenate([np.arange(len(self.passages)), np.repeat(np.arange(len(self.passages)), counts)])
        weights = np.ones(len(documents))
        weights[: len(self.passages)] = answer_weight
        self.engine = BM25Plus(documents, params, weights)
        # Documents kept as word numbers in one array: a tenth of the memory of tuples of strings.
        self._words = list(self.engine.idf)
        number = {word: n for n, word in enumerate(self._words)}
        self._offsets = np.cumsum([0] + [len(d) for d in documents])
        self._tokens = np.fromiter((number[t] for d in documents for t in d), dtype=np.int32, count=int(self._offsets[-1]))
        self.rarest_idf = math.log(self.engine.size + 1)  # BM25Plus idf of a word found once
        self.unknown_weight = rule.unknown_weight * self.rarest_idf
        self.out_of_scope = self.tokenizer.vocabulary.out_of_scope
        self._vocabularies: dict[tuple[str, int], frozenset[str]] = {}

    def __getstate__(self) -> dict:
        """Pickled without the tokenizer (jieba and OpenCC hold native state; a fresh one on load)
        and without the per-passage word sets, which are rebuilt as questions come."""
        return {key: value for key, value in self.__dict__.items() if key not in ("tokenizer", "_vocabularies")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.tokenizer = Tokenizer()
        self._vocabularies = {}

    @property
    def documents(self) -> list[tuple[str, ...]]:
        """Every document's tokens (answers first, then questions), as BM25 saw them."""
        return [self._document(d) for d in range(len(self._offsets) - 1)]

    def _document(self, document: int) -> tuple[str, ...]:
        return tuple(self._words[n] for n in self._tokens[self._offsets[document]:self._offsets[document + 1]])

    def _words_of(self, first: int, end: int) -> frozenset[str]:
        """The words of documents ``first`` to ``end`` (exclusive), which are contiguous."""
        return frozenset(self._words[n] for n in self._tokens[self._offsets[first]:self._offsets[end]].tolist())

    def _questions_of(self, passage: int) -> frozenset[str]:
        first = self._question_end[passage - 1] if passage else len(self.passages)
        return self._words_of(first, self._question_end[passage])

    def vocabulary(self, passage: int) -> frozenset[str]:
        """Every word of a passage's documents: its answer (with headings) and its questions."""
        return self._kept(("vocabulary", passage),
                          lambda: self._words_of(passage, passage + 1) | self._questions_of(passage))

    def answer_words(self, passage: int) -> frozenset[str]:
        """The words of a passage's answer document (heading chain and body)."""
        return self._kept(("answer", passage), lambda: self._words_of(passage, passage + 1))

    def headings(self, passage: int) -> frozenset[str]:
        """The words of a passage's heading chain."""
        return self._kept(("headings", passage), lambda: frozenset(self.tokenizer.tokens(self.passages[passage].question)))

    def _kept(self, key: tuple[str, int], compute: Callable[[], frozenset[str]]) -> frozenset[str]:
        """Word sets of the passages questions land on, kept between questions (at most
        ``VOCABULARIES_KEPT``), not built for every passage up front."""
        words = self._vocabularies.get(key)
        if words is None:
            if len(self._vocabularies) >= VOCABULARIES_KEPT:
                self._vocabularies.clear()
            words = self._vocabularies[key] = compute()
        return words

    def weight(self, token: str) -> float:
        """How much a question word says: its idf, or a fixed weight for words the knowledge lacks."""
        return self.engine.idf.get(token, self.unknown_weight)

    def information(self, unique: set[str]) -> float:
        """The idf mass of a question's distinct words. A word the knowledge lacks counts once,
        not again through its parts (大批量: 大批, 批量)."""
        unknown = [t for t in unique if t not in self.engine.idf]
        parts = {t for t in unknown if any(t != whole and t in whole for whole in unknown)}
        return sum(self.weight(t) for t in unique - parts)

    def coverage(self, tokens: Sequence[str], vocabulary: frozenset[str], information: float | None = None) -> float:
        """Share of the question's information found in ``vocabulary`` (``information``: the
        question's, when already known)."""
        unique = set(tokens)
        total = self.information(unique) if information is None else information
        return sum(self.weight(t) for t in unique & vocabulary) / total if total else 0.0

    def _document_scores(self, tokens: Sequence[str]) -> tuple[np.ndarray, float]:
        """Every document's weighted score less the δ term of a question document, and that term."""
        matched = self.engine.matched(tokens)
        base = self.engine.base(tokens)
        matched[: len(self.passages)] += (self.answer_weight - 1) * base  # answers weigh their δ term too
        return matched, base

    def passage_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """Each passage's score: its best document's weighted BM25Plus score (every passage)."""
        matched, base = self._document_scores(tokens)
        best = matched[: len(self.passages)].copy()
        np.maximum.at(best, self._owner[len(self.passages):], matched[len(self.passages):])
        return best + base

    def top(self, tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The k best passages, best first (ties: lower passage number), without scoring every
        passage: the best documents are taken until k distinct passages own them."""
        matched, base = self._document_scores(tokens)
        k = min(k, len(self.passages))
        wanted = min(len(matched), 4 * k)
        while True:
            candidates = np.argpartition(matched, -wanted)[-wanted:] if wanted < len(matched) else np.arange(len(matched))
            owners = self._owner[candidates]
            order = np.lexsort((owners, -matched[candidates]))
            ranked: dict[int, float] = {}
            for position in order:
                ranked.setdefault(int(owners[position]), float(matched[candidates[position]]) + base)
                if len(ranked) == k:
                    return list(ranked.items())
            if wanted >= len(matched):
                return list(ranked.items())
            wanted = min(len(matched), wanted * 4)

    def _foreign(self, token: str, question: set[str], passage: int) -> bool:
        """A topic the knowledge does not cover: out of scope unless the passage is about it (its
        headings name it; mentions in its answer or similar questions do not count) or the question
        holds one of the topic's exception words (逾期 is covered where the quota went missing)."""
        if token not in self.out_of_scope or question & self.out_of_scope[token]:
            return False
        return token not in self.headings(passage)

    def _rarest_words(self, words: set[str]) -> float:
        """How much ``words`` say, in units of the rarest word's idf."""
        return sum(self.weight(t) for t in words) / self.rarest_idf

    def refusal(self, tokens: Sequence[str], passage: int, information: float | None = None) -> Refusal | None:
        """Why the best passage does not answer the question (see ``AbstainRule``), or None."""
        rule, vocabulary = self.rule, self.vocabulary(passage)
        unique = set(tokens)
        coverage = self.coverage(unique, vocabulary, information)
        matched = self._rarest_words(unique & vocabulary)
        passing = ((len(unique) >= rule.passing_words and coverage >= rule.passing_coverage)
                   or (len(unique) >= rule.story_words and matched >= rule.long_matched))
        if not passing and any(self._foreign(t, unique, passage) for t in unique):
            return Refusal.FOREIGN_TOPIC
        siblings = self.tokenizer.vocabulary.siblings
        named = {t for t in unique if t in siblings and siblings[t] not in unique}
        if named:  # only a passage that itself speaks of the sibling, and only on a close match
            if (not named <= self.answer_words(passage) or coverage < rule.sibling_coverage
                    or self._rarest_words((unique - named) & vocabulary) < rule.sibling_matched):
                return Refusal.SIBLING
        if self._rarest_words(unique & vocabulary - self.tokenizer.vocabulary.generic) < rule.vague_matched:
            return Refusal.VAGUE
        if len(unique & vocabulary) < min(2, len(unique)):
            return Refusal.NO_MATCH  # one coincidental word is not a match
        if (coverage >= rule.min_coverage or (coverage >= rule.weak_coverage and matched >= rule.min_matched)
                or (coverage >= rule.long_coverage and matched >= rule.long_matched)):
            return None
        return Refusal.NO_MATCH

    def question_tokens(self, question: str) -> tuple[str, ...]:
        """A question's tokens; in a story the last sentence, where people put what they ask
        ("…上个月还完了，额度还是0。想问该找谁？"), counts twice."""
        tokens = self.tokenizer.tokens(question)
        if len(question) >= STORY_CHARS:
            sentences = [s for s in _SENTENCE_END.split(question) if s.strip()]
            if len(sentences) > 1:
                tokens += self.tokenizer.tokens(sentences[-1])
        return tuple(tokens)

    def search(self, question: str, k: int = 3) -> SearchResult:
        tokens = self.question_tokens(question)
        if not tokens:
            return SearchResult(question, tokens, (), Refusal.EMPTY)
        ranked = self.top(tokens, k)
        information = self.information(set(tokens))
        hits = tuple(
            Hit(self.passages[i], score, self.coverage(tokens, self.vocabulary(i), information)) for i, score in ranked
        )
        return SearchResult(question, tokens, hits, self.refusal(tokens, ranked[0][0], information))
