"""Search result → ``Answer`` (the best passage, related questions, clarification candidates or a
helpful refusal, always the disclaimer) → ``View``, what a person is shown, whatever the screen;
and its renderings: JSON for scripts, HTML for Telegram (the console renders the view itself,
with its numbered options).

Front ends render ``view(answer)``; they never pick passages or cut text themselves."""

from __future__ import annotations

import html
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from .decision import Outcome
from .knowledge import HEADING_SEPARATOR, Passage
from .search import Hit, SearchResult
from .text import RESOURCES, SENTENCE_ENDS

TELEGRAM_LIMIT = 4096
SHORT_CHARS = 300  # about a phone screen of Chinese text: the first part of a long passage
RELATED = 3  # related questions offered under an answer
_ITEM = re.compile(r"^\d{1,2}\s*[.、．)）]")
_SENTENCE_END = re.compile(f"[{SENTENCE_ENDS}]")


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
    related_heading: str
    console_greeting: str
    console_help: str
    console_usage: str
    console_prompt: str
    console_goodbye: str
    console_expand_hint: str
    oneshot_expand_hint: str
    console_none_of_these: str
    console_none_noted: str
    console_no_such_choice: str
    console_unknown_command: str
    console_nothing_to_expand: str
    console_nothing_to_decline: str
    console_knows: str
    console_source_line: str
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
    """What the core decided for one question. ``hits``: the passages of the ``ask --json``
    contract (the best first; a clarification's candidates). ``related``: the next-best distinct
    passages that are not an article's framing, for "猜你想问". ``refusal``: why there is no
    answer (a ``search.Refusal`` value), None when answered."""

    question: str
    answered: bool
    hits: tuple[Hit, ...]
    notes: tuple[str, ...]
    messages: Messages
    best_score: float | None = None  # of the best passage found, shown or not (for the refusal log)
    clarify: bool = False  # the hits are candidates: "您是想问：…"
    related: tuple[Passage, ...] = ()
    refusal: str | None = None

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


def related_to(kept: list[Hit], count: int = RELATED) -> tuple[Passage, ...]:
    """After the first of ``kept`` (distinct hits, best first): up to ``count`` passages worth
    asking next. An article's introduction or closing section is never one: it answers nothing."""
    return tuple(hit.passage for hit in kept[1:] if not hit.passage.framing)[:count]


def compose(result: SearchResult, messages: Messages, max_results: int = 3) -> Answer:
    """The ``max_results`` best distinct passages, best first, with their fused scores: a script
    reading ``ask --json`` sees how far the next ones trail (a person is shown the first, or the
    candidates of a clarification)."""
    if not result.answered:
        if not result.question.strip():
            notes: tuple[str, ...] = (messages.empty_question,)
        elif result.topic is not None:
            notes = (result.topic.reply,)
        else:
            notes = tuple(filter(None, [messages.refusal_notes.get(result.refusal.value)]))
        best = result.hits[0].score if result.hits else None
        return Answer(result.question, False, (), notes, messages, best, refusal=result.refusal.value)
    hits = distinct(result.hits)
    best = hits[0]
    clarify = result.clarify and len(hits) > 1
    return Answer(result.question, True, tuple(hits[:max_results]), (), messages, best.score, clarify,
                  () if clarify else related_to(hits))


def compose_chosen(passage: Passage, result: SearchResult, messages: Messages) -> Answer:
    """The answer to a passage the user chose (a related question, a clarification's candidate):
    that passage, whatever ranks first, with related questions from ``result``, a search for the
    passage's own question (``faq.search(passage.question, k=8)``)."""
    own = next((hit for hit in result.hits if hit.passage.id == passage.id), Hit(passage, 0.0, 1.0))
    kept = distinct((own, *(hit for hit in result.hits if hit.passage.id != passage.id)))
    return Answer(passage.question, True, (own,), (), messages, own.score, False, related_to(kept))


def to_json(answer: Answer) -> dict:
    """The ``ask --json`` contract (DESIGN.md), with two added keys: ``refusal``, why there is
    no answer (``search.Refusal``'s value; null when answered), and ``notes``, what is said
    around the passages (a refused topic's own advice, a long question cut)."""
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
        "refusal": answer.refusal,
        "notes": list(answer.notes),
    }


# --- what a person is shown ------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """A passage offered to tap or type: ``id`` (stable, for a button's data or a lookup in
    ``faq.knowledge.passages``) and ``label``, its own heading (with its parent's, when two
    offered share one)."""

    id: str
    label: str


@dataclass(frozen=True)
class View:
    """One answer as a person sees it, on any screen. Read ``kind`` first:

    - ``ANSWER``: ``title`` (the passage's own heading, not its chain) over ``short`` (the first
      part: about ``SHORT_CHARS`` characters or up to the first numbered item, cut at a line or
      sentence end); ``more`` says ``full`` (the whole passage) holds more, for "展开全文".
      ``source`` is the article's title ("" for a Q&A entry: never a file name). ``related``:
      up to three next questions, the next-best distinct passages, never an article's framing.
      ``passage``: the id of the passage shown (for 👍/👎).
    - ``CLARIFY``: ``choices`` are the candidates, best first, for "您是想问：" (a front end adds
      its own "都不是"); choosing one is answered by ``compose_chosen``.
    - ``REFUSAL``: ``reason`` in plain words, ``hint`` (the topic's own advice, or how to ask
      better), ``examples``: questions the bot does answer, to offer as taps.

    Always: ``notes`` to say first (a long question cut), ``disclaimer`` (full, for the console)
    and ``disclaimer_short`` (under a Telegram answer), ``question`` as asked."""

    kind: Outcome
    question: str
    notes: tuple[str, ...]
    disclaimer: str
    disclaimer_short: str
    title: str = ""
    short: str = ""
    full: str = ""
    source: str = ""
    passage: str = ""
    related: tuple[Choice, ...] = ()
    choices: tuple[Choice, ...] = ()
    reason: str = ""
    hint: str = ""
    examples: tuple[str, ...] = ()

    @property
    def more(self) -> bool:
        return self.short != self.full


def view(answer: Answer) -> View:
    """What ``answer`` shows (see ``View``)."""
    m = answer.messages
    common = dict(question=answer.question, disclaimer=m.disclaimer, disclaimer_short=m.disclaimer_short)
    if not answer.answered:
        reason, hint = _reason_and_hint(answer)
        return View(Outcome.REFUSE, notes=answer.notes[:-1], reason=reason, hint=hint, examples=m.examples, **common)
    if answer.clarify:
        return View(Outcome.CLARIFY, notes=answer.notes, choices=choices(hit.passage for hit in answer.hits), **common)
    best = answer.hits[0].passage
    return View(Outcome.ANSWER, notes=answer.notes, title=best.heading, short=shorten(best.answer), full=best.answer,
                source=best.article, passage=best.id, related=choices(answer.related), **common)


def choices(passages: Iterable[Passage]) -> tuple[Choice, ...]:
    """Passages to offer, labelled by their own heading; two of one heading (a section of two
    articles) are told apart by their parents' headings."""
    passages = tuple(passages)
    counts = Counter(p.heading for p in passages)
    return tuple(Choice(p.id, HEADING_SEPARATOR.join(p.headings[-2:]) if counts[p.heading] > 1 else p.heading)
                 for p in passages)


def _reason_and_hint(answer: Answer) -> tuple[str, str]:
    """A refusal's last note is its own: a topic's reply (its first sentence says why, the rest
    what to do) or the plain reason, followed then by how to ask better."""
    said = answer.notes[-1] if answer.notes else answer.messages.no_answer
    if answer.refusal == "out_of_scope":
        end = _SENTENCE_END.search(said)
        return (said[:end.end()], said[end.end():].strip()) if end else (said, "")
    return said, answer.messages.no_answer if answer.refusal == "no_match" else ""


def shorten(text: str, limit: int = SHORT_CHARS) -> str:
    """The first part of a passage: whole lines while they fit in ``limit`` characters, up to
    and including the first numbered item; a first line longer than that cut after its last
    sentence end within the limit (or at the limit, then marked "…")."""
    kept: list[str] = []
    for line in text.split("\n"):
        if kept and (sum(map(len, kept)) + len(line) > limit or any(_ITEM.match(k) for k in kept)):
            break
        kept.append(line)
    short = "\n".join(kept)
    if len(short) <= limit:
        return short
    ends = [match.end() for match in _SENTENCE_END.finditer(short, 0, limit)]
    return short[:ends[-1]] if ends and ends[-1] >= limit // 3 else short[:limit].rstrip() + "…"


# --- renderings ------------------------------------------------------------------------------

def render_html(answer: Answer, full: bool = False) -> str:
    """Telegram HTML, every text escaped: the short answer under its title (``full``: the whole
    passage), the source's title, the short disclaimer; "您是想问：" for a clarification (the
    candidates are buttons); a refusal's reason, hint and the examples' heading (buttons too)."""
    e = html.escape
    shown = view(answer)
    m = answer.messages
    if shown.kind is Outcome.REFUSE:
        blocks = [*map(e, shown.notes), "\n".join(e(line) for line in (shown.reason, shown.hint) if line),
                  e(m.examples_heading)]
    elif shown.kind is Outcome.CLARIFY:
        blocks = [*map(e, shown.notes), e(m.clarify_heading)]
    else:
        source = f"\n<i>来源：{e(shown.source)}</i>" if shown.source else ""
        blocks = [*map(e, shown.notes), f"<b>{e(shown.title)}</b>\n{e(shown.full if full else shown.short)}{source}"]
    return "\n\n".join([*blocks, f"<i>⚠️ {e(shown.disclaimer_short)}</i>"])


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
