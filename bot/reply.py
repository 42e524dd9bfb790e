"""Search result → ``Answer`` (passages or a helpful refusal, always the disclaimer), and its
renderings: plain text for the console, JSON for scripts, HTML chunks for Telegram."""

from __future__ import annotations

import html
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from .search import Hit, SearchResult
from .text import RESOURCES

TELEGRAM_LIMIT = 4096


@dataclass(frozen=True)
class Messages:
    """The bot's own words, from ``resources/messages.toml``."""

    disclaimer: str
    disclaimer_without_notice: str
    disclaimer_short: str
    no_answer: str
    official_channel: str
    empty_question: str
    long_question: str
    examples_heading: str
    clarify_heading: str
    console_greeting: str
    console_help: str
    console_prompt: str
    console_goodbye: str
    examples: tuple[str, ...]
    refusal_notes: dict[str, str]

    @classmethod
    def load(cls, path: Path = RESOURCES / "messages.toml") -> "Messages":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        data["examples"] = tuple(data["examples"])
        data["refusal_notes"] = dict(data.get("refusal_notes", {}))
        return cls(**data)

    def with_notices(self, notices: tuple[str, ...]) -> "Messages":
        """The full disclaimer, quoting what the knowledge's articles say of themselves."""
        if not notices:
            return replace(self, disclaimer=self.disclaimer_without_notice)
        return replace(self, disclaimer=self.disclaimer.replace("{notice}", " ".join(notices)))


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    hits: tuple[Hit, ...]
    notes: tuple[str, ...]
    messages: Messages
    best_score: float | None = None  # of the best passage found, shown or not (for the refusal log)
    more_available: bool = False  # further passages match (a "more results" button has something to show)
    clarify: bool = False  # the hits are candidates: "您是想问：…"

    @property
    def disclaimer(self) -> str:
        return self.messages.disclaimer


def distinct(hits: tuple[Hit, ...]) -> list[Hit]:
    """The hits in order, less any whose text is already inside one kept before it (an item
    inside its section's overview) or holds one: a reader never sees the same words twice."""
    kept: list[Hit] = []
    for hit in hits:
        text = hit.passage.answer
        if not any(text in other.passage.answer or other.passage.answer in text for other in kept):
            kept.append(hit)
    return kept


def compose(result: SearchResult, messages: Messages, max_results: int = 3, related: float = 0.02) -> Answer:
    """Keep the best passage, and the next ones only when their fused score is near it (their
    softmax share at least ``related`` times the best's); a clarification keeps its candidates."""
    if not result.answered:
        if not result.question.strip():
            notes: tuple[str, ...] = (messages.empty_question,)
        elif result.topic is not None:
            notes = (result.topic.reply,)
        else:
            notes = tuple(filter(None, [messages.refusal_notes.get(result.refusal.value)]))
        best = result.hits[0].score if result.hits else None
        return Answer(result.question, False, (), notes, messages, best)
    hits = distinct(result.hits)
    best = hits[0]
    if result.clarify and len(hits) > 1:
        shown = hits[:max_results]
    else:
        shown = [best] + [hit for hit in hits[1:max_results] if math.exp(hit.score - best.score) >= related]
    return Answer(result.question, True, tuple(shown), (), messages, best.score, len(hits) > len(shown),
                  result.clarify and len(shown) > 1)


def to_json(answer: Answer) -> dict:
    """The ``ask --json`` contract (DESIGN.md)."""
    return {
        "question": answer.question,
        "answered": answer.answered,
        "clarify": answer.clarify,
        "results": [
            {
                "id": hit.passage.id,
                "question": hit.passage.question,
                "answer": hit.passage.answer,
                "source": hit.passage.source,
                "score": round(hit.score, 4),
            }
            for hit in answer.hits
        ],
        "disclaimer": answer.disclaimer,
    }


def _refusal_lines(answer: Answer) -> list[str]:
    m = answer.messages
    return [
        *answer.notes,
        m.no_answer,
        m.examples_heading + "\n" + "\n".join(f"· {example}" for example in m.examples),
        m.official_channel,
    ]


def render_text(answer: Answer) -> str:
    """The answer as a person reads it in a terminal."""
    if not answer.answered:
        blocks = _refusal_lines(answer)
    elif answer.clarify:
        blocks = [*answer.notes, answer.messages.clarify_heading + "\n" + "\n".join(
            f"{rank}. {hit.passage.headings[-1]}" for rank, hit in enumerate(answer.hits, start=1))]
    else:
        blocks = [*answer.notes] + [
            f"【{rank}】{hit.passage.question}\n{hit.passage.answer}\n—— 来源：{hit.passage.source}"
            for rank, hit in enumerate(answer.hits, start=1)
        ]
    return "\n\n".join([*blocks, "⚠️ " + answer.disclaimer])


def render_html(answer: Answer, hits: tuple[Hit, ...] | None = None) -> str:
    """Telegram HTML: every passage text escaped, the short disclaimer under the answer."""
    e = html.escape
    if not answer.answered:
        blocks = [e(line) for line in _refusal_lines(answer)]
    elif answer.clarify and hits is None:
        blocks = [e(note) for note in answer.notes] + [e(answer.messages.clarify_heading) + "\n" + "\n".join(
            f"{rank}. {e(hit.passage.headings[-1])}" for rank, hit in enumerate(answer.hits, start=1))]
    else:
        blocks = [e(note) for note in answer.notes] + [
            f"<b>{e(' › '.join(hit.passage.headings[-2:]))}</b>\n{e(hit.passage.answer)}\n<i>来源：{e(hit.passage.source)}</i>"
            for hit in (hits if hits is not None else answer.hits)
        ]
    return "\n\n".join([*blocks, f"<i>⚠️ {e(answer.messages.disclaimer_short)}</i>"])


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Cut a rendered message into chunks under ``limit``: at paragraph breaks, else at line
    breaks, else (a single huge line of escaped text) before the limit, never inside an entity."""
    return _pack((piece for paragraph in text.split("\n\n") for piece in _fit(paragraph, limit)), "\n\n", limit)


def _fit(paragraph: str, limit: int) -> list[str]:
    """A paragraph as pieces under ``limit``, cut at line breaks (and inside over-long lines)."""
    if telegram_length(paragraph) <= limit:
        return [paragraph]
    lines: list[str] = []
    for line in paragraph.split("\n"):
        while telegram_length(line) > limit:
            cut = _cut(line, limit)
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return _pack(lines, "\n", limit)


def _pack(pieces: Iterable[str], separator: str, limit: int) -> list[str]:
    """Join consecutive pieces with ``separator`` as long as the result stays under ``limit``."""
    packed: list[str] = []
    current: str | None = None
    for piece in pieces:
        candidate = piece if current is None else f"{current}{separator}{piece}"
        if telegram_length(candidate) <= limit:
            current = candidate
        else:
            packed.append(current)
            current = piece
    if current:
        packed.append(current)
    return packed


def _cut(line: str, limit: int) -> int:
    """Where to cut an over-long line: as late as fits, but never inside an HTML entity."""
    cut = min(len(line), limit)
    while telegram_length(line[:cut]) > limit:
        cut -= 1
    amp = line.rfind("&", max(0, cut - 10), cut)
    if amp > 0 and ";" not in line[amp:cut]:
        cut = amp
    return cut
