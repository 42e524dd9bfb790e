"""The maintainer's loop: questions the bot could not answer, and answers users marked 👎, go to a
JSONL log; ``faqbot report`` groups them by wording so the next passage to write is obvious.

Privacy: a chat or user id is never stored or logged in clear, only as a salted hash. The salt
comes from $FAQBOT_LOG_SALT, or is generated once and kept (mode 0600) beside the log.

Safety: the log and the salt are files of this user, mode 0600, never followed through a symbolic
link (in a shared folder another user could plant either). The log is capped: past
$FAQBOT_LOG_MAX_MB (default 10) it moves to ``unanswered.jsonl.1`` (and ``.1`` to ``.2``…), keeping
$FAQBOT_LOG_FILES files in all (default 5). The report shows control and escape characters as
visible escapes, so a question cannot drive the maintainer's terminal.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import re
import secrets
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

from .text import Tokenizer

SALT_FILE = "salt"
LOG_FILE = "unanswered.jsonl"
MAX_LOG_MB, LOG_FILES = 10.0, 5  # defaults of FAQBOT_LOG_MAX_MB and FAQBOT_LOG_FILES
MAX_QUESTION_CHARS = 1000  # of a question, kept in the log
MAX_COMPARED = 1000  # earlier groups a log entry is compared with, at most (see ``group_entries``)
UNANSWERED = ("refused", "downvote", "none_of_these", "should_answer")  # kinds that are the maintainer's work
PICKED = "clarify_pick"  # a clarification's choice a user tapped: ``shown`` is [the passage picked]
VOTES = ("upvote", "downvote")  # one per voter and answer counts (``latest_votes``)
KINDS = (*UNANSWERED, PICKED, "upvote")  # every kind of entry the bot writes
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def log_dir() -> Path:
    """$FAQBOT_LOG_DIR, else $XDG_STATE_HOME/faqbot, else ~/.local/state/faqbot."""
    if os.environ.get("FAQBOT_LOG_DIR"):
        return Path(os.environ["FAQBOT_LOG_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "faqbot"


def load_salt(folder: Path) -> bytes:
    """The hashing salt: from the environment, or made once and stored beside the logs. A salt
    file that is a link or another user's is refused (OSError): a planted salt makes the hashes
    reversible by whoever planted it."""
    if os.environ.get("FAQBOT_LOG_SALT"):
        return os.environ["FAQBOT_LOG_SALT"].encode()
    path = folder / SALT_FILE
    try:
        with _open_own(path, os.O_RDONLY) as handle:
            return handle.read()
    except FileNotFoundError:
        _make_folder(folder)
        salt = secrets.token_hex(16).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(salt)
        return salt


def _make_folder(folder: Path) -> None:
    """The log's folder, made private (0700) when the bot creates it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def _open_own(path: Path, flags: int, mode: int = 0o600):
    """``path`` opened without following a link, and only when it is a regular file of this
    user; OSError otherwise (FileNotFoundError when it does not exist and ``flags`` do not create it)."""
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as error:
        if path.is_symlink():
            raise OSError(f"{path} is a symbolic link; refusing to follow it") from None
        raise error
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(descriptor)
        raise OSError(f"{path} is not a regular file of this user; refusing it")
    return os.fdopen(descriptor, "rb" if flags == os.O_RDONLY else "ab")


def log_limits(environ: dict | None = None) -> tuple[int, int]:
    """(bytes a log file may reach, files kept): FAQBOT_LOG_MAX_MB and FAQBOT_LOG_FILES, or
    10 MB and 5; ValueError naming the setting when one is not a positive number."""
    environ = os.environ if environ is None else environ
    try:
        megabytes = float(environ.get("FAQBOT_LOG_MAX_MB") or MAX_LOG_MB)
        if not 0 < megabytes < float("inf"):
            raise ValueError
    except ValueError:
        raise ValueError("FAQBOT_LOG_MAX_MB must be a positive number of megabytes") from None
    files = (environ.get("FAQBOT_LOG_FILES") or str(LOG_FILES)).strip()
    if not files.isdigit() or int(files) < 1:
        raise ValueError("FAQBOT_LOG_FILES must be a whole number of files, at least 1")
    return int(megabytes * 1_000_000), int(files)


@dataclass(frozen=True)
class Pseudonymizer:
    """Turns ids into stable, unlinkable-without-the-salt tokens for logs."""

    salt: bytes

    def __call__(self, identifier: object) -> str:
        return hashlib.sha256(self.salt + str(identifier).encode()).hexdigest()[:16]


class QuestionLog:
    """Appends one JSON object per event, rotating past a size cap; safe to call from several threads."""

    def __init__(self, path: Path, pseudonymize: Pseudonymizer, max_bytes: int = int(MAX_LOG_MB * 1_000_000),
                 files: int = LOG_FILES) -> None:
        self.path = Path(path)
        self.pseudonymize = pseudonymize
        self.max_bytes, self.files = max_bytes, files
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> "QuestionLog":
        """The log of $FAQBOT_LOG_DIR with its salt; OSError when the folder cannot hold them or a
        file there is a link or another user's, ValueError for a bad size setting."""
        folder = log_dir()
        max_bytes, files = log_limits()
        log = cls(folder / LOG_FILE, Pseudonymizer(load_salt(folder)), max_bytes, files)
        try:
            _open_own(log.path, os.O_RDONLY).close()
        except FileNotFoundError:
            pass
        return log

    def record(self, kind: str, chat: object, question: str, best_score: float | None, shown: Iterable[str],
               voter: object = None, answer: int | None = None) -> None:
        """``kind`` is one of ``KINDS``; ``shown`` the passage ids the user saw (a clarification's
        candidates; the one picked, for "clarify_pick"). A vote ("upvote"/"downvote") names its
        ``voter`` (hashed like the chat) and ``answer`` (the message voted on): ``read_log`` keeps
        the latest vote of each voter on each answer."""
        if kind not in KINDS:
            raise ValueError(f"unknown log kind {kind!r}")
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "kind": kind,
            "chat": self.pseudonymize(chat),
            "question": question[:MAX_QUESTION_CHARS],
            "best_score": None if best_score is None else round(best_score, 4),
            "shown": list(shown),
        }
        if kind in VOTES:
            entry.update(voter=self.pseudonymize(voter), answer=answer)
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8", errors="replace")
        with self._lock:
            _make_folder(self.path.parent)
            handle = _open_own(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            size = os.fstat(handle.fileno()).st_size
            if size and size + len(line) > self.max_bytes:
                handle.close()
                self._rotate()
                handle = _open_own(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            with handle:
                handle.write(line)

    def _rotate(self) -> None:
        """unanswered.jsonl → .1 → .2 …; the oldest beyond ``files`` is dropped."""
        paths = rotated_paths(self.path, self.files)
        paths[-1].unlink(missing_ok=True)
        for newer, older in zip(reversed(paths[:-1]), reversed(paths[1:])):
            if newer.exists():
                os.replace(newer, older)


def rotated_paths(path: Path, files: int) -> list[Path]:
    """The log and its rotated files, newest first: ``x.jsonl``, ``x.jsonl.1`` … ``x.jsonl.<files-1>``."""
    return [path, *(path.with_name(f"{path.name}.{n}") for n in range(1, files))]


@dataclass(frozen=True)
class Group:
    """Log entries asked in similar words (or meaning, ``bot.suggest``): the maintainer's next
    passage to write. Counts per kind: refused, 👎, "都不是" and "应该能回答" presses."""

    example: str
    count: int
    refused: int
    downvoted: int
    chats: int
    variants: tuple[str, ...]
    none_of_these: int = 0
    should_answer: int = 0


def read_log(path: Path, files: int | None = None) -> list[dict]:
    """The log's entries, oldest first, its rotated files included; a damaged line is skipped,
    never fatal. Lines are cut at "\\n" only: a question may hold U+2028 or U+0085, which
    ``splitlines`` would take for line ends. Votes: one per voter and answer, the latest (a user
    who pressed 👎 then 👍 on one answer appears once, with "upvote"); see ``latest_votes``."""
    if files is None:
        try:
            files = log_limits()[1]
        except ValueError:  # refused where it matters, at the bot's start; the report reads the default
            files = LOG_FILES
    entries = []
    for part in reversed(rotated_paths(Path(path), files)):
        text = _read_regular(part)
        if text is None:
            continue
        for line in text.split("\n"):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("question"), str):
                entries.append(entry)
    return latest_votes(entries)


def latest_votes(entries: list[dict]) -> list[dict]:
    """The entries less every vote a later one replaced: the log is append-only, a vote changed is
    a new line with the same chat, voter and answer. (A vote without those keys, from an older
    bot, counts on its own.)"""

    def key(entry: dict) -> str | None:
        if entry.get("kind") not in VOTES or "answer" not in entry:
            return None
        return json.dumps([entry.get("chat"), entry.get("voter"), entry.get("answer")])

    latest = {key(entry): n for n, entry in enumerate(entries)}
    return [entry for n, entry in enumerate(entries) if key(entry) is None or latest[key(entry)] == n]


def unanswered(entries: Iterable[dict]) -> list[dict]:
    """The entries that are work: refused, 👎, "都不是", "应该能回答" (not the taps of a choice)."""
    return [entry for entry in entries if entry.get("kind") in UNANSWERED]


def entry_time(entry: dict) -> datetime | None:
    """When an entry was logged (None for a missing or damaged time)."""
    try:
        return datetime.strptime(str(entry.get("time")), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def within_days(entries: Iterable[dict], days: float, now: datetime | None = None) -> list[dict]:
    """The entries of the last ``days`` days; one whose time cannot be read is left out."""
    start = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    return [entry for entry in entries if (when := entry_time(entry)) is not None and when >= start]


def _read_regular(path: Path) -> str | None:
    """A regular file's text (None when it is missing or something else: a FIFO must not hang
    the report). A maintainer may point ``--log`` at a link to a copy: reading follows links."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return handle.read().decode("utf-8", errors="replace")


def group_entries(entries: list[dict], tokenizer: Tokenizer, threshold: float = 0.5) -> list[Group]:
    """Entries grouped by word overlap (``partition_by_words``), largest first."""
    return by_size([summarise(found) for found in partition_by_words(entries, tokenizer, threshold)])


def by_size(groups: Iterable[Group]) -> list[Group]:
    """Most frequent first, then asked in the most chats."""
    return sorted(groups, key=lambda g: (-g.count, -g.chats, g.example))


def partition_by_words(entries: list[dict], tokenizer: Tokenizer, threshold: float = 0.5) -> list[list[dict]]:
    """Greedy grouping by word overlap: an entry joins the first group whose first entry shares
    at least ``threshold`` of their words (Jaccard of retrieval tokens), else starts a group;
    groups in the order they started.

    In O(n log n), not by comparing each entry with every group: identical wordings are grouped
    once, and only groups sharing one of the entry's rarest words are compared (the prefix filter
    of set-similarity joins: two word sets with Jaccard ≥ t share a word among the first
    |x| − ⌈t·|x|⌉ + 1 of each, words ordered rarest first), earliest first, at most
    ``MAX_COMPARED`` of them."""
    words_of = {}
    for entry in entries:
        question = entry["question"]
        if question not in words_of:
            words_of[question] = frozenset(tokenizer.tokens(question)) or frozenset({question.strip()})
    frequency = Counter(word for words in set(words_of.values()) for word in words)
    centres: list[frozenset[str]] = []
    members: list[list[dict]] = []
    postings: dict[str, list[int]] = {}  # word → groups whose centre has it in its prefix, earliest first
    decided: dict[frozenset[str], int] = {}
    for entry in entries:
        words = words_of[entry["question"]]
        group = decided.get(words)
        if group is None:
            group = _first_similar(words, _prefix(words, frequency, threshold), centres, postings, threshold)
            if group is None:
                group = len(centres)
                centres.append(words)
                members.append([])
                for word in _prefix(words, frequency, threshold):
                    postings.setdefault(word, []).append(group)
            decided[words] = group
        members[group].append(entry)
    return members


def _prefix(words: frozenset[str], frequency: Counter, threshold: float) -> list[str]:
    """The rarest |x| − ⌈t·|x|⌉ + 1 words: any set at least ``threshold`` similar shares one."""
    ordered = sorted(words, key=lambda word: (frequency[word], word))
    return ordered[:len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1]


def _first_similar(words: frozenset[str], prefix: list[str], centres: list[frozenset[str]],
                   postings: dict[str, list[int]], threshold: float) -> int | None:
    """The earliest group whose centre is similar enough, among those sharing a prefix word (and
    of a size that allows it: Jaccard ≥ t needs t·|x| ≤ |y| ≤ |x|/t)."""
    candidates = heapq.merge(*(postings[word] for word in prefix if word in postings))
    size, compared, last = len(words), 0, -1
    for group in candidates:
        if group == last:
            continue
        last, compared = group, compared + 1
        centre = centres[group]
        if threshold * size <= len(centre) and threshold * len(centre) <= size:
            shared = len(words & centre)
            if shared >= threshold * (size + len(centre) - shared):
                return group
        if compared >= MAX_COMPARED:
            return None
    return None


def summarise(found: list[dict]) -> Group:
    """A group's counts, its most frequent wording and three others."""
    kinds = Counter(m.get("kind") for m in found)
    wording = wordings(found)
    return Group(
        example=wording[0],
        count=len(found),
        refused=kinds["refused"],
        downvoted=kinds["downvote"],
        chats=len({m.get("chat") for m in found}),
        variants=tuple(wording[1:4]),
        none_of_these=kinds["none_of_these"],
        should_answer=kinds["should_answer"],
    )


def wordings(found: Iterable[dict]) -> list[str]:
    """The distinct wordings of some entries, most frequent first (ties: first asked)."""
    return [question for question, _ in Counter(m["question"].strip() for m in found).most_common()]


def visible(text: str) -> str:
    """``text`` safe for a terminal: control, escape, bidirectional and line-separator characters
    shown as escapes (``\\x1b``, ``\\u2028``), so a logged question cannot move the cursor,
    recolour, hide or reorder what the maintainer reads."""
    return _INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


REPORT_HEADER = f"{'次数':>4} {'未答':>4} {'👎':>3} {'都不是':>3} {'应答':>4} {'会话':>4}  问题（及其他问法）"


def render_group(group: Group) -> list[str]:
    """One group's lines: its counts (all, refused, 👎, "都不是", "应该能回答", chats) and wordings."""
    counts = (f"{group.count:>6} {group.refused:>6} {group.downvoted:>4} {group.none_of_these:>6} "
              f"{group.should_answer:>6} {group.chats:>6}")
    return [f"{counts}  {visible(group.example)}", *(f"{'':>{len(counts)}}  · {visible(v)}" for v in group.variants)]


def render_report(groups: list[Group], top: int = 20) -> str:
    if not groups:
        return "日志里没有未回答或被点踩的问题。"
    return "\n".join([REPORT_HEADER, *(line for group in groups[:top] for line in render_group(group))])
