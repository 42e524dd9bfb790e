"""The on-disk index cache: a built BM25 index, keyed on the exact bytes that were indexed.

A second start with the same knowledge (and the same code and word lists) loads the index instead
of tokenising every passage again. The knowledge itself is always read and parsed first (that is
cheap); its ``digest`` (a hash of exactly the bytes parsed), a hash of ``bot/*.py`` and
``bot/resources/*``, and ``FORMAT`` make the key, so a change to any of them gives another key and a
file changed during a build can never be cached under its new content's key.

The cache is data only: numpy arrays (``np.load(..., allow_pickle=False)``) and JSON, one ``.npz``
file per key; nothing in it can run code. It is used only in a folder that belongs to this user and
that no one else can write, and only from a regular file of this user's that no one else can write;
a folder of someone else's, or open to others, is not used at all (one warning; the index is built
in memory). A file that cannot be read, or is not of the shape ``Index.from_arrays`` expects, is
rebuilt with one warning: the cache can make a start faster, never make it fail or hang.
Files are written atomically (a temporary file, then a rename), mode 0600, in a folder made 0700.
This module is the only one that reads or writes the index cache's files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .knowledge import Knowledge
from .search import Index
from .text import RESOURCES

FORMAT = 2  # 1: a pickle of (Knowledge, Index); 2: Index.to_arrays() in an .npz, its JSON beside the arrays
CODE = Path(__file__).parent
KEEP = 8  # cache files kept (most recent first): one per knowledge folder or version in use
META = "meta.json"  # the member of the .npz holding the JSON part, as UTF-8 bytes
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
log = logging.getLogger(__name__)
_warned: set[str] = set()


def cache_dir() -> Path:
    """$FAQBOT_CACHE, else $XDG_CACHE_HOME/faqbot, else ~/.cache/faqbot."""
    if os.environ.get("FAQBOT_CACHE"):
        return Path(os.environ["FAQBOT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "faqbot"


def _warn_once(message: str, *args: object) -> None:
    """A warning said once per process (a refused folder is refused again at every reload)."""
    text = message % args
    if text not in _warned:
        _warned.add(text)
        log.warning("%s", text)


def _code_digest() -> str:
    """What the index depends on besides the knowledge: the code and the word lists (ours, read whole)."""
    digest = hashlib.sha256()
    for path in [*sorted(CODE.glob("*.py")), *sorted(p for p in RESOURCES.iterdir() if p.is_file())]:
        data = path.read_bytes()
        digest.update(f"{path.parent.name}/{path.name}\0{len(data)}\0".encode("utf-8") + data)
    return digest.hexdigest()


def index_key(knowledge: Knowledge) -> str:
    """The cache key of an index over this knowledge: its digest, the code's, the format."""
    return hashlib.sha256(f"{FORMAT}\0{knowledge.digest}\0{_code_digest()}".encode()).hexdigest()


def _private(status: os.stat_result) -> str | None:
    """Why a folder or file is not to be trusted: another user's, or writable by group or others."""
    if status.st_uid != os.geteuid():
        return f"owned by uid {status.st_uid}, not by this user (uid {os.geteuid()})"
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(status.st_mode):o})"
    return None


@contextmanager
def _private_folder(create: bool) -> Iterator[int | None]:
    """The cache folder, open (a descriptor every file operation is relative to, so it cannot be
    swapped for another one between the check and the use), or None: absent, unusable, refused."""
    folder = cache_dir()
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            _warn_once("index cache folder %s cannot be made (%s); the index is kept in memory", folder, error)
            yield None
            return
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield None
        return
    except OSError as error:
        _warn_once("index cache folder %s cannot be opened (%s); the index is kept in memory", folder, error)
        yield None
        return
    try:
        refused = _private(os.fstat(descriptor))
        if refused:
            _warn_once("index cache folder %s refused: %s; the index is built in memory and not cached "
                       "(use a folder of your own that only you can write: chmod 700, or set FAQBOT_CACHE)",
                       folder, refused)
            yield None
        else:
            yield descriptor
    finally:
        os.close(descriptor)


def private_cache_dir() -> Path | None:
    """The cache folder when it exists and is this user's alone (see ``_private``), else None
    (with one warning when refused): where other caches of the user may be kept."""
    with _private_folder(create=True) as descriptor:
        return None if descriptor is None else cache_dir()


def vector_cache_path(knowledge_folder: Path, encoder_name: str) -> Path | None:
    """Where the vectors of one knowledge folder are kept (one file per folder and encoder, so an
    edit re-embeds only what changed), or None when there is no private cache folder. Only the
    ``KEEP`` most recently used such files are kept."""
    private = private_cache_dir()
    if private is None:
        return None
    tag = hashlib.sha256(f"{encoder_name}\0{Path(knowledge_folder).resolve()}".encode()).hexdigest()[:32]
    path = private / f"vectors-{tag}.npz"
    try:
        if path.exists():
            os.utime(path)  # used now: the last to be dropped
        stale = sorted(private.glob("vectors-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]
        for old in stale:
            old.unlink()
    except OSError:  # another start tidying at the same time
        pass
    return path


def _read(folder: int, name: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """A cache file's arrays and JSON, or None when there is none. Raises for a file that is not a
    regular file of this user's that no one else can write, or is not a readable data-only .npz."""
    try:
        descriptor = os.open(name, _OPEN_FLAGS, dir_fd=folder)  # a FIFO does not block, a link is refused
    except FileNotFoundError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError("not a regular file")
        refused = _private(status)
        if refused:
            raise PermissionError(refused)
        with np.load(handle, allow_pickle=False) as data:
            arrays = {member: data[member] for member in data.files}
    meta = arrays.pop(META, None)
    if not isinstance(meta, np.ndarray) or meta.dtype != np.uint8 or meta.ndim != 1:
        raise ValueError("no JSON part")
    return arrays, json.loads(meta.tobytes().decode("utf-8"))


def _write(folder: int, name: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write atomically: a temporary file (0600, created here, never an existing one), then a
    rename over ``name``. Keeps the ``KEEP`` most recent cache files and drops pickles of format 1."""
    payload = json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")
    temporary = f".index-{secrets.token_hex(8)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                         0o600, dir_fd=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays, **{META: np.frombuffer(payload, dtype=np.uint8)})
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=folder)
        except OSError:
            pass
        raise
    try:
        with os.scandir(folder) as entries:
            ours = [(e.stat(follow_symlinks=False).st_mtime, e.name) for e in entries
                    if e.name.startswith("index-") and e.name.endswith((".npz", ".pickle"))]
        fresh = sorted((entry for entry in ours if entry[1].endswith(".npz")), reverse=True)
        for _, stale in [entry for entry in ours if entry[1].endswith(".pickle")] + fresh[KEEP:]:
            os.unlink(stale, dir_fd=folder)
    except OSError:  # another start tidying at the same time: the next write tidies again
        pass


def cached_index(knowledge: Knowledge, build: Callable[[], Index]) -> Index:
    """The index of this knowledge from the cache, else ``build()``'s (then stored). Never fails
    because of the cache: anything wrong with it means a build, with one warning."""
    name = f"index-{index_key(knowledge)}.npz"
    with _private_folder(create=True) as folder:
        if folder is None:
            return build()
        try:
            stored = _read(folder, name)
            if stored is not None:
                return Index.from_arrays(*stored, knowledge.passages, knowledge.topics)
        except Exception as error:  # unreadable, foreign, not ours, of another shape: rebuild, never crash
            log.warning("index cache %s unusable (%s: %s); rebuilding", name, type(error).__name__, error)
        index = build()
        try:
            _write(folder, name, *index.to_arrays())
        except Exception as error:  # a full disk, a read-only folder: served from memory all the same
            log.warning("index cache not written (%s: %s)", type(error).__name__, error)
        return index
