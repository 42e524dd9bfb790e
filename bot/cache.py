"""The on-disk index cache: a built FAQ core, keyed on the knowledge folder's content.

A second start with the same knowledge (and the same code and word lists) loads the index instead
of reading, cutting and tokenising every article again. Any change to any knowledge file, or to
``bot/resources``, or to the code itself, gives another key. A cache file that cannot be
read is ignored and rebuilt: the cache can make a start faster, never make it fail.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

from .knowledge import _is_knowledge_file
from .text import RESOURCES

FORMAT = 1
CODE = Path(__file__).parent
KEEP = 8  # cache files kept (most recent first): one per knowledge folder or version in use
log = logging.getLogger(__name__)
T = TypeVar("T")


def cache_dir() -> Path:
    """$FAQBOT_CACHE, else $XDG_CACHE_HOME/faqbot, else ~/.cache/faqbot."""
    if os.environ.get("FAQBOT_CACHE"):
        return Path(os.environ["FAQBOT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "faqbot"


def fingerprint(folder: Path, skip_bad: bool) -> str:
    """A digest of everything the index depends on: knowledge files, word lists and the code."""
    digest = hashlib.sha256(f"{FORMAT}:{skip_bad}".encode())
    sources = [*sorted(CODE.glob("*.py")), *sorted(p for p in RESOURCES.iterdir() if p.is_file())]
    knowledge = sorted(p for p in Path(folder).iterdir() if _is_knowledge_file(p))
    for path in [*sources, *knowledge]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cached(folder: Path, skip_bad: bool, build: Callable[[], T]) -> T:
    """``build()``'s result, from the cache when the knowledge is unchanged; stored after a build."""
    try:
        path = cache_dir() / f"index-{fingerprint(folder, skip_bad)}.pickle"
    except OSError:
        return build()  # the knowledge folder itself will be reported by build()
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except FileNotFoundError:
        pass
    except Exception as error:  # a damaged or foreign cache file: rebuild, never crash
        log.warning("index cache %s unreadable (%s); rebuilding", path.name, type(error).__name__)
    built = build()
    _store(path, built)
    return built


def _store(path: Path, value: object) -> None:
    """Write atomically (temporary file, then rename): a reader never sees half a cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".index-", delete=False) as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(handle.name, path)
        for stale in sorted(path.parent.glob("index-*.pickle"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
            stale.unlink(missing_ok=True)
    except OSError as error:
        log.warning("index cache not written (%s)", error)
