"""BM25 over passages, built once, searched many times: the lexical retriever and its signals.

Scores are rank-bm25's ``BM25Plus`` (idf = log((N+1)/df), always positive, so a word in half of
a few dozen passages still counts; δ keeps long passages from being over-penalised), computed
through postings instead of a full scan. A passage is several documents (its answer, and each
question it answers) and scores as its best one. Coverage says what was matched: the share of
the question's information (idf mass) a passage holds, which does not depend on the corpus size
or on raw BM25 magnitudes; the scope decision (``bot.decision``) weighs it.
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

from .knowledge import Passage, Topic
from .text import SENTENCE_ENDS, Tokenizer


SCORE_TYPE = np.float32  # half the memory traffic of float64; ranks agree with rank-bm25 to ~1e-7
DENSE_SHARE = 16  # a word in at least 1/16 of the documents is stored as a full row ...
DENSE_MIN_DOCUMENTS = 4096  # ... once the corpus is large enough for that to pay
VOCABULARIES_KEPT = 4096  # passages whose word sets are kept between questions
UNKNOWN_WEIGHT = 0.5  # a word the knowledge lacks weighs half the rarest word: small talk or a typo as likely as the subject
STORY_CHARS = 40  # a question this long, of several sentences, is a story ...
_SENTENCE_END = re.compile(f"[{SENTENCE_ENDS}\n]+")  # ... whose last sentence is what is asked
MAX_STORY_CHARS = 2000  # the last sentence is looked for in a story's start only: bounded cost
LAST_SENTENCE_CHARS = 50  # of the last sentence, its end is read again: where the asking is (real questions: 12 at the median)


@dataclass(frozen=True)
class BM25Params:
    k1: float = 1.5
    b: float = 0.75
    delta: float = 1.0


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    coverage: float


class Refusal(str, Enum):
    """Why a question gets no passage: the reply can say so."""

    EMPTY = "empty"  # no words at all: blank, punctuation, emoji, a link
    FILLER = "filler"  # words, but none that says what is asked: a greeting, thanks, "在吗", the product's bare name
    OUT_OF_SCOPE = "out_of_scope"  # nearest to questions this knowledge does not answer (a topic)
    NO_MATCH = "no_match"  # nothing in the knowledge is near enough

    @property
    def asked(self) -> bool:
        """Whether something was asked that the knowledge could learn to answer: worth the
        maintainers' log of refused questions (a greeting or an emoji is not)."""
        return self not in (Refusal.EMPTY, Refusal.FILLER)


@dataclass(frozen=True)
class SearchResult:
    question: str
    tokens: tuple[str, ...]
    hits: tuple[Hit, ...]
    refusal: Refusal | None
    clarify: bool = False  # the hits are candidates to choose from ("您是想问：…")
    topic: Topic | None = None  # the out-of-scope topic the question is nearest to, if any
    confidence: float = 0.0  # P(answerable), as the scope decision saw it

    @property
    def answered(self) -> bool:
        return self.refusal is None


def _array(arrays: dict[str, np.ndarray], name: str, kinds: str, ndim: int, dtype: type,
           length: int | None = None, bound: int | None = None) -> np.ndarray:
    """One array of a stored index, checked before use: a numpy kind of ``kinds`` ("iu", "f",
    "b"), ``ndim`` dimensions, ``length`` rows, integers in ``[0, bound)``, floats finite."""
    value = arrays.get(name)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds or value.ndim != ndim:
        raise ValueError(f"{name}: not a {ndim}-dimensional array of kind {kinds!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name}: {len(value)} rows, not {length}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{name}: not finite")
    if bound is not None and value.size and (value.min() < 0 or value.max() >= bound):
        raise ValueError(f"{name}: out of range")
    return value.astype(dtype, copy=False)


def _bounds(arrays: dict[str, np.ndarray], name: str, count: int, end: int) -> np.ndarray:
    """Offsets of ``count`` consecutive runs in an array of ``end`` items: 0, …, end, never decreasing."""
    value = _array(arrays, name, "iu", 1, np.int64, length=count + 1)
    if value[0] != 0 or value[-1] != end or (np.diff(value) < 0).any():
        raise ValueError(f"{name}: not offsets of {count} runs over {end} items")
    return value


def _number(meta: dict, name: str, kind: type) -> int | float:
    value = meta.get(name) if isinstance(meta, dict) else None
    if type(value) is not kind and not (kind is float and type(value) is int):
        raise ValueError(f"{name}: not a {kind.__name__}")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"{name}: not finite")
    return value


def _words(meta: dict, name: str) -> list[str]:
    value = meta.get(name) if isinstance(meta, dict) else None
    if not isinstance(value, list) or not all(type(w) is str for w in value) or len(set(value)) != len(value):
        raise ValueError(f"{name}: not a list of distinct words")
    return value


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

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything scoring needs as plain arrays and JSON-able values (``from_arrays`` reads
        them back): words and parameters as JSON, idf, weights, postings and full rows as arrays."""
        words = list(self.idf)
        sparse = [self.postings[w] for w in words if w not in self.dense]
        rows = [self.dense[w] for w in words if w in self.dense]
        arrays = {
            "idf": np.fromiter(self.idf.values(), dtype=np.float64, count=len(words)),
            "weights": np.asarray(self.weights, dtype=np.float64),
            "dense_mask": np.fromiter((w in self.dense for w in words), dtype=bool, count=len(words)),
            "posting_bounds": np.concatenate([[0], np.cumsum([len(ids) for ids, _ in sparse], dtype=np.int64)]).astype(np.int64),
            "posting_documents": np.concatenate([ids for ids, _ in sparse]).astype(np.int32) if sparse else np.zeros(0, np.int32),
            "posting_contributions": np.concatenate([c for _, c in sparse]).astype(SCORE_TYPE) if sparse else np.zeros(0, SCORE_TYPE),
            "dense_rows": np.stack(rows).astype(SCORE_TYPE) if rows else np.zeros((0, self.size), SCORE_TYPE),
        }
        params = {"k1": self.params.k1, "b": self.params.b, "delta": self.params.delta}
        return arrays, {"words": words, "size": self.size, "avgdl": self.avgdl, "params": params}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> "BM25Plus":
        """The engine ``to_arrays`` described, without counting a word again; ValueError when the
        arrays or values are not of the shape and range it writes (a rebuild is the caller's)."""
        words = _words(meta, "words")
        size = _number(meta, "size", int)
        params = meta.get("params") if isinstance(meta, dict) else None
        if size < 0 or not isinstance(params, dict) or set(params) != {"k1", "b", "delta"}:
            raise ValueError("engine: size or parameters")
        engine = cls.__new__(cls)
        engine.params = BM25Params(*(float(_number(params, key, float)) for key in ("k1", "b", "delta")))
        engine.size = size
        engine.avgdl = float(_number(meta, "avgdl", float))
        engine.weights = _array(arrays, "weights", "f", 1, np.float64, length=size)
        idf = _array(arrays, "idf", "f", 1, np.float64, length=len(words))
        mask = _array(arrays, "dense_mask", "b", 1, bool, length=len(words))
        documents = _array(arrays, "posting_documents", "iu", 1, np.int32, bound=size)
        contributions = _array(arrays, "posting_contributions", "f", 1, SCORE_TYPE, length=len(documents))
        bounds = _bounds(arrays, "posting_bounds", int((~mask).sum()), len(documents))
        rows = _array(arrays, "dense_rows", "f", 2, SCORE_TYPE, length=int(mask.sum()))
        if rows.shape[1] != size or (np.diff(bounds) == 0).any():
            raise ValueError("engine: rows or postings of the wrong size")
        engine.idf = dict(zip(words, idf.tolist()))
        sparse_words = [w for w, dense in zip(words, mask.tolist()) if not dense]
        engine.postings = {w: (documents[bounds[n]:bounds[n + 1]], contributions[bounds[n]:bounds[n + 1]])
                           for n, w in enumerate(sparse_words)}
        engine.dense = dict(zip((w for w, dense in zip(words, mask.tolist()) if dense), rows))
        return engine

    def base(self, query: Sequence[str]) -> float:
        """What every (unweighted) document gets for the query alone: BM25Plus's δ term."""
        return sum(self.idf.get(term, 0.0) for term in query) * self.params.delta

    def matched(self, query: Sequence[str]) -> np.ndarray:
        """Every document's score without the δ term. A word asked n times counts n times, as in
        rank-bm25, but its postings are read once: the cost follows the question's distinct words."""
        counts = Counter(query)
        sparse = [(self.postings[term], n) for term, n in counts.items() if term in self.postings]
        if sparse:
            documents = np.concatenate([ids for (ids, _), _ in sparse])
            contributions = np.concatenate([c * SCORE_TYPE(n) for (_, c), n in sparse])
            scores = np.bincount(documents, contributions, minlength=self.size).astype(SCORE_TYPE)
        else:
            scores = np.zeros(self.size, dtype=SCORE_TYPE)
        for term, n in counts.items():
            if term in self.dense:
                scores += SCORE_TYPE(n) * self.dense[term]
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
    match weighing ``answer_weight`` times a question match. Beside it, the questions this
    knowledge does not answer (``topics``) as documents of their own: how much of a question the
    nearest of them holds is a signal of the scope decision."""

    def __init__(
        self,
        passages: Sequence[Passage],
        topics: Sequence[Topic] = (),
        tokenizer: Tokenizer | None = None,
        params: BM25Params = BM25Params(),
        answer_weight: float = 1.15,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.passages = tuple(passages)
        self.tokenizer = tokenizer or Tokenizer()
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
        self.unknown_weight = UNKNOWN_WEIGHT * self.rarest_idf
        outside = [(n, tuple(self.tokenizer.tokens(q))) for n, topic in enumerate(topics) for q in topic.questions]
        outside = [(n, words) for n, words in outside if words]
        self._outside_topic = np.array([n for n, _ in outside], dtype=np.int32)
        self._topics = len(topics)
        self._outside_words = [frozenset(words) for _, words in outside]
        self._outside_engine = BM25Plus([words for _, words in outside]) if outside else None
        self._vocabularies: dict[tuple[str, int], frozenset[str]] = {}

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The built index as plain arrays and JSON-able values, for ``bot.cache``: no passages
        (the knowledge they come from is loaded first), no tokenizer (jieba and OpenCC hold native
        state: a fresh one on load), no per-passage word sets (rebuilt as questions come)."""
        engine_arrays, engine_meta = self.engine.to_arrays()
        arrays = {f"engine.{name}": value for name, value in engine_arrays.items()}
        arrays.update(question_end=self._question_end, owner=self._owner, offsets=self._offsets,
                      tokens=self._tokens, outside_topic=self._outside_topic)
        outside_meta = None
        if self._outside_engine is not None:
            outside_arrays, outside_meta = self._outside_engine.to_arrays()
            arrays.update({f"outside.{name}": value for name, value in outside_arrays.items()})
            number = {word: n for n, word in enumerate(outside_meta["words"])}
            ids = [sorted(number[w] for w in words) for words in self._outside_words]
            arrays["outside_words"] = np.fromiter((n for row in ids for n in row), dtype=np.int32,
                                                  count=sum(map(len, ids)))
            arrays["outside_offsets"] = np.cumsum([0] + [len(row) for row in ids], dtype=np.int64)
        meta = {"passages": len(self.passages), "topics": self._topics, "answer_weight": self.answer_weight,
                "engine": engine_meta, "outside": outside_meta}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict, passages: Sequence[Passage],
                    topics: Sequence[Topic] = (), tokenizer: Tokenizer | None = None) -> "Index":
        """The index ``to_arrays`` described, over these passages and topics (the same knowledge),
        without tokenising or counting anything again. ValueError when anything is not of the shape,
        type or range ``to_arrays`` writes, or was written for another number of passages or topics."""
        passages = tuple(passages)
        if not isinstance(meta, dict) or meta.get("passages") != len(passages) or meta.get("topics") != len(topics):
            raise ValueError("written for other knowledge")
        index = cls.__new__(cls)
        index.passages = passages
        index.answer_weight = float(_number(meta, "answer_weight", float))
        index._topics = len(topics)
        part = lambda prefix: {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        index.engine = BM25Plus.from_arrays(part("engine."), meta.get("engine"))
        documents, count = index.engine.size, len(passages)
        index._question_end = _array(arrays, "question_end", "iu", 1, np.int64, length=count, bound=documents + 1)
        if (np.diff(index._question_end) < 0).any() or (count and (index._question_end[0] < count or index._question_end[-1] != documents)) \
                or (not count and documents):
            raise ValueError("question_end: not the ends of each passage's questions")
        index._owner = _array(arrays, "owner", "iu", 1, np.int64, length=documents, bound=max(count, 1))
        index._words = list(index.engine.idf)
        tokens = arrays.get("tokens")
        index._offsets = _bounds(arrays, "offsets", documents, len(tokens) if isinstance(tokens, np.ndarray) else -1)
        index._tokens = _array(arrays, "tokens", "iu", 1, np.int32, bound=len(index._words))
        index.rarest_idf = math.log(index.engine.size + 1)
        index.unknown_weight = UNKNOWN_WEIGHT * index.rarest_idf
        index._outside_topic = _array(arrays, "outside_topic", "iu", 1, np.int32, bound=max(len(topics), 1))
        index._outside_engine, index._outside_words = None, []
        if meta.get("outside") is not None:
            index._outside_engine = BM25Plus.from_arrays(part("outside."), meta["outside"])
            outside = len(index._outside_topic)
            words = _array(arrays, "outside_words", "iu", 1, np.int32, bound=len(index._outside_engine.idf))
            offsets = _bounds(arrays, "outside_offsets", outside, len(words))
            if index._outside_engine.size != outside:
                raise ValueError("outside: not one document per example")
            names = list(index._outside_engine.idf)
            index._outside_words = [frozenset(names[n] for n in words[offsets[i]:offsets[i + 1]].tolist())
                                    for i in range(outside)]
        elif len(index._outside_topic):
            raise ValueError("outside: examples without their engine")
        index.tokenizer = tokenizer or Tokenizer()
        index._vocabularies = {}
        return index

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
        not again through the parts the tokenizer added for it (大批量: 大批, 批量); one pass over
        the unknown words, so the cost grows with the question's length, not its square."""
        unknown = {t for t in unique if t not in self.engine.idf}
        parts = {p for whole in unknown for p in self.tokenizer.parts(whole) if p != whole}
        return sum(self.weight(t) for t in unique - (parts & unknown))

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

    def names_a_sibling(self, tokens: Sequence[str], passage: int) -> bool:
        """Whether the question names only a sibling product (``siblings.tsv``: 花呗 without 借呗)
        that the passage's text never speaks of: e5 sees 花呗 and 借呗 as near, a user does not."""
        siblings = self.tokenizer.vocabulary.siblings
        unique = set(tokens)
        named = {t for t in unique if t in siblings and siblings[t] not in unique}
        return bool(named) and not named <= self.answer_words(passage)

    def outside(self, tokens: Sequence[str], information: float) -> tuple[float, int | None]:
        """How much of the question the nearest question this knowledge does not answer holds
        (coverage, as for passages), and that question's topic number."""
        if self._outside_engine is None or not tokens:
            return 0.0, None
        ranked = self._outside_engine.top(tokens, 1)
        if not ranked or ranked[0][1] <= self._outside_engine.base(tokens):
            return 0.0, None  # no word in common
        nearest = ranked[0][0]
        return self.coverage(tokens, self._outside_words[nearest], information), int(self._outside_topic[nearest])

    def question_tokens(self, question: str) -> tuple[str, ...]:
        """A question's tokens; in a story the last sentence, where people put what they ask
        ("…上个月还完了，额度还是0。想问该找谁？"), counts twice. The question is read within the
        tokenizer's caps, the sentence again in its last ``LAST_SENTENCE_CHARS`` characters: no
        question costs more than these two bounded reads."""
        tokens = self.tokenizer.question_tokens(question)
        if len(question) >= STORY_CHARS:
            sentences = [s for s in _SENTENCE_END.split(question[:MAX_STORY_CHARS]) if s.strip()]
            if len(sentences) > 1:
                tokens += self.tokenizer.question_tokens(sentences[-1][-LAST_SENTENCE_CHARS:])
        return tuple(tokens)
