"""The maintainer's loop: questions the bot could not answer, and answers users marked 👎, go to a
JSONL log; ``faqbot report`` groups them by wording so the next passage to write is obvious.

Privacy: a chat or user id is never stored or logged in clear, only as a salted hash. The salt
comes from $FAQBOT_LOG_SALT, or is generated once and kept (mode 0600) beside the log.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .text import Tokenizer

SALT_FILE = "salt"
LOG_FILE = "unanswered.jsonl"


def log_dir() -> Path:
    """$FAQBOT_LOG_DIR, else $XDG_STATE_HOME/faqbot, else ~/.local/state/faqbot."""
    if os.environ.get("FAQBOT_LOG_DIR"):
        return Path(os.environ["FAQBOT_LOG_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "faqbot"


def load_salt(folder: Path) -> bytes:
    """The hashing salt: from the environment, or made once and stored beside the logs."""
    if os.environ.get("FAQBOT_LOG_SALT"):
        return os.environ["FAQBOT_LOG_SALT"].encode()
    path = folder / SALT_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_hex(16).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(salt)
        return salt


@dataclass(frozen=True)
class Pseudonymizer:
    """Turns ids into stable, unlinkable-without-the-salt tokens for logs."""

    salt: bytes

    def __call__(self, identifier: object) -> str:
        return hashlib.sha256(self.salt + str(identifier).encode()).hexdigest()[:16]


class QuestionLog:
    """Appends one JSON object per event; safe to call from several threads."""

    def __init__(self, path: Path, pseudonymize: Pseudonymizer) -> None:
        self.path = Path(path)
        self.pseudonymize = pseudonymize
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> "QuestionLog":
        folder = log_dir()
        return cls(folder / LOG_FILE, Pseudonymizer(load_salt(folder)))

    def record(self, kind: str, chat: object, question: str, best_score: float | None, shown: Iterable[str]) -> None:
        """``kind`` is "refused" or "downvote"; ``shown`` the passage ids the user saw."""
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "kind": kind,
            "chat": self.pseudonymize(chat),
            "question": question[:1000],
            "best_score": None if best_score is None else round(best_score, 4),
            "shown": list(shown),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)


@dataclass(frozen=True)
class Group:
    """Log entries asked in similar words: the maintainer's next passage to write."""

    example: str
    count: int
    refused: int
    downvoted: int
    chats: int
    variants: tuple[str, ...]


def read_log(path: Path) -> list[dict]:
    """The log's entries; a damaged line is skipped, never fatal."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("question"), str):
            entries.append(entry)
    return entries


def group_entries(entries: list[dict], tokenizer: Tokenizer, threshold: float = 0.5) -> list[Group]:
    """Greedy grouping by word overlap (Jaccard of retrieval tokens ≥ ``threshold``), largest first."""
    clusters: list[tuple[set[str], list[dict]]] = []
    for entry in entries:
        words = set(tokenizer.tokens(entry["question"])) or {entry["question"].strip()}
        for centre, members in clusters:
            if len(words & centre) / len(words | centre) >= threshold:
                members.append(entry)
                break
        else:
            clusters.append((words, [entry]))
    groups = []
    for _, members in clusters:
        kinds = Counter(m.get("kind") for m in members)
        wording = Counter(m["question"].strip() for m in members)
        groups.append(
            Group(
                example=wording.most_common(1)[0][0],
                count=len(members),
                refused=kinds["refused"],
                downvoted=kinds["downvote"],
                chats=len({m.get("chat") for m in members}),
                variants=tuple(q for q, _ in wording.most_common(4)[1:]),
            )
        )
    return sorted(groups, key=lambda g: (-g.count, -g.chats, g.example))


def render_report(groups: list[Group], top: int = 20) -> str:
    if not groups:
        return "日志里没有未回答或被点踩的问题。"
    lines = [f"{'次数':>4} {'未答':>4} {'👎':>3} {'会话':>4}  问题（及其他问法）"]
    for group in groups[:top]:
        lines.append(f"{group.count:>6} {group.refused:>6} {group.downvoted:>4} {group.chats:>6}  {group.example}")
        lines += [f"{'':>24}  · {variant}" for variant in group.variants]
    return "\n".join(lines)
