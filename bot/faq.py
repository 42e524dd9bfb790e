"""The pure core wired together: a knowledge folder becomes an object that answers questions.
Both front ends hold one of these and nothing else of the pipeline."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .cache import cached_index, vector_cache_path
from .config import shipped_knowledge
from .decision import CALIBRATION_FILE, Calibration, Outcome, Signals, decide, fuse, scope_features, top
from .knowledge import Knowledge, Topic, load_knowledge
from .reply import Answer, Messages, compose
from .search import Hit, Index, Refusal, SearchResult
from .text import has_words, question_text
from .semantic import STORE_NAME, DenseIndex, Vectors, load_encoder

MAX_QUESTION_CHARS = 1000
SPARE_HITS = 5  # fetched beyond what is shown, for the passages ``distinct`` drops
log = logging.getLogger(__name__)


def load_calibration(folder: Path) -> tuple[Calibration, Path]:
    """The knowledge folder's ``calibration.json``, else (absent, or made by an older version: one
    warning) the shipped knowledge's."""
    for candidate in (Path(folder) / CALIBRATION_FILE, shipped_knowledge() / CALIBRATION_FILE):
        if candidate.is_file():
            try:
                return Calibration.load(candidate), candidate
            except ValueError as error:
                if candidate.parent.resolve() == shipped_knowledge().resolve():
                    raise
                log.warning("%s; using the shipped calibration", error)
    raise FileNotFoundError(f"no {CALIBRATION_FILE} in {folder} nor in the shipped knowledge")


def load_vectors(knowledge: Knowledge, folder: Path, semantic: bool,
                 progress: Callable[[int, int], None] | None, wait: bool | None = None) -> Vectors | None:
    """The dense index: vectors from the folder's shipped store, then the user's cache, and only
    what neither holds is embedded (at once when it is little or ``wait``, else in the background)
    and kept in the cache for the next start."""
    encoder = load_encoder(semantic)
    if encoder is None:
        return None
    cache = vector_cache_path(folder, encoder.name)  # None: no private cache folder to keep them in
    return Vectors(knowledge.passages, knowledge.topics, encoder, [Path(folder) / STORE_NAME, cache], cache,
                   progress, wait)


def ship_vectors(faq: "FAQ", folder: Path) -> int:
    """Write the vectors of exactly this knowledge to the folder's ``vectors.npz``, so that a
    fresh install answers its first question without embedding anything. Returns how many."""
    if faq.vectors is None or not faq.vectors.wait():
        raise RuntimeError("the sentence encoder is off or cannot load here: no vectors to write")
    path = Path(folder) / STORE_NAME
    faq.dense.store.save(path, faq.dense.keys)
    path.chmod(0o644)  # shipped with the package: readable by every user
    return len(faq.dense.keys)


@dataclass(frozen=True)
class FAQ:
    knowledge: Knowledge
    index: Index
    vectors: Vectors | None  # None: words alone; else ready now, or once the background embedding ends
    calibration: Calibration
    messages: Messages
    calibration_path: Path | None = None

    @classmethod
    def load(
        cls,
        folder: Path,
        skip_bad: bool = False,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
        semantic: bool = True,
        wait_for_vectors: bool | None = None,
    ) -> "FAQ":
        """Read and index a knowledge folder, or load its index from the cache (``bot.cache``);
        ``progress(done, total)`` hears how the indexing goes. ``semantic=False``: words only.
        Missing vectors are embedded before returning when ``wait_for_vectors`` (None: when they are
        few, ``semantic.SYNC_TEXTS``), else in the background while words alone answer."""

        knowledge = load_knowledge(folder, skip_bad=skip_bad)  # always: cheap, and its digest is the cache key

        def build() -> Index:
            return Index(knowledge.passages, knowledge.topics, progress=progress)

        index = cached_index(knowledge, build) if use_cache else build()
        vectors = load_vectors(knowledge, folder, semantic, progress, wait_for_vectors)
        calibration, path = load_calibration(folder)
        return cls(knowledge, index, vectors, calibration, Messages.load().with_notices(knowledge.notices), path)

    @property
    def dense(self) -> DenseIndex | None:
        """The dense index once every vector exists; until then (or without an encoder) None, and
        every answer is ranked and decided on words alone."""
        return self.vectors.index if self.vectors is not None else None

    def signals(self, question: str, tokens: tuple[str, ...] | None = None) -> Signals:
        """Every retriever's scores of every passage, and the nearest out-of-scope example
        (``tokens``: the question's, when the caller has them already)."""
        tokens = self.index.question_tokens(question) if tokens is None else tokens
        retrievers = {"bm25": self.index.passage_scores(tokens) if tokens else np.zeros(len(self.index.passages))}
        information = self.index.information(set(tokens)) if tokens else 0.0
        outside_coverage, topic_by_words = self.index.outside(tokens, information)
        topic = topic_by_words
        outside_dense = neighbours = dense_scope = None
        if self.dense is not None:
            dense = self.dense.signals(self.index.tokenizer.spelling(question, MAX_QUESTION_CHARS))
            retrievers |= dense.retrievers
            outside_dense, topic, neighbours, dense_scope = dense.outside, dense.outside_topic, dense.neighbours, dense.scope
        return Signals(tuple(tokens), retrievers, outside_coverage, outside_dense, topic, neighbours, topic_by_words,
                       information, dense_scope)

    def fused(self, signals: Signals) -> np.ndarray:
        return fuse(signals.retrievers, self.calibration.fusion) if signals.dense else signals.retrievers["bm25"]

    def search(self, question: str, k: int = 3) -> SearchResult:
        """The best ``k`` passages and what to do with them: answer, ask which, or refuse."""
        tokens = self.index.question_tokens(question)
        if set(tokens) <= self.index.tokenizer.vocabulary.products:  # nothing asked (or only "借呗"): no encoding
            return SearchResult(question, tokens, (), Refusal.FILLER if has_words(question) else Refusal.EMPTY)
        signals = self.signals(question, tokens)
        fused = self.fused(signals)
        ranked = top(fused, k)
        coverage = [self.index.coverage(signals.tokens, self.index.vocabulary(int(i)), signals.information) for i in ranked]
        best = int(ranked[0])
        features = scope_features(signals, best, coverage[0], self.index.names_a_sibling(signals.tokens, best))
        decision = decide(fused, ranked, features, self.calibration, signals.dense)
        hits = tuple(Hit(self.index.passages[i], s, c) for i, s, c in zip(decision.ranked, decision.scores, coverage))
        topic = self._topic(signals, features) if decision.outcome is Outcome.REFUSE else None
        refusal = None
        if decision.outcome is Outcome.REFUSE:
            refusal = Refusal.OUT_OF_SCOPE if topic else Refusal.NO_MATCH
        return SearchResult(question, signals.tokens, hits, refusal, decision.outcome is Outcome.CLARIFY,
                            topic, decision.confidence)

    def _topic(self, signals: Signals, features: dict[str, float]) -> Topic | None:
        """The out-of-scope topic a refused question belongs to: its nearest example's, when that
        example is nearer than any passage's question, or the question is about a sibling product."""
        siblings = self.index.tokenizer.vocabulary.siblings
        names_sibling = any(t in siblings and siblings[t] not in signals.tokens for t in signals.tokens)
        if names_sibling and signals.outside_topic_by_words is not None:
            return self.knowledge.topics[signals.outside_topic_by_words]  # the sibling's name decides
        if signals.outside_topic is None:
            return None
        nearer = features["dense_margin"] < 0 if signals.dense else features["coverage_margin"] <= 0
        return self.knowledge.topics[signals.outside_topic] if nearer else None

    def ask(self, question: str, top_k: int = 3) -> Answer:
        """Answer one question; an over-long one is answered on its first 1,000 characters."""
        question = question_text(question if isinstance(question, str) else str(question))
        shortened = len(question) > MAX_QUESTION_CHARS
        asked = question[:MAX_QUESTION_CHARS] if shortened else question
        answer = compose(self.search(asked, k=top_k + SPARE_HITS), self.messages, max_results=top_k)
        if shortened:
            note = self.messages.long_question.format(limit=MAX_QUESTION_CHARS)
            answer = replace(answer, question=question, notes=(note, *answer.notes))
        return answer
