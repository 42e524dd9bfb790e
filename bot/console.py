"""The console front end: an interactive prompt, and the one-shot / batch modes for scripts.

It shows what Telegram shows, as text: the short answer under its own heading, the article's
title as source, the short disclaimer, then numbered related questions or clarification choices
("都不是" last). A number opens its choice; 0 or 展开 shows the current answer whole. ``respond``
decides what one typed line shows and what it logs; ``interactive`` only reads, prints and logs.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, replace
from typing import Callable, TextIO

from .decision import Outcome
from .faq import FAQ
from .feedback import QuestionLog, log_dir
from .reply import Answer, Messages, View, compose_chosen, to_json, view
from .search import Refusal
from .text import question_text

CONSOLE_USER = "console"  # the console's one user, pseudonymised in the log like a Telegram chat
QUIT = ("/quit", "/exit", "/q", "quit", "exit", "退出", "再见", "拜拜")  # any case, with or without the slash
EXPAND = ("0", "展开", "展开全文")
NONE_OF_THESE = ("都不是", "都不对", "都没有", "没有我要的")  # typed instead of the "都不是" option's number
_NUMERALS = {numeral: n for n, numeral in enumerate("一二三四五六七八九十", start=1)} | {"两": 2}
_ORDINAL = re.compile(r"第?([0-9]+|[一二两三四五六七八九十])(?:个|项|条|号)?")
RELATED_SEARCH = 8  # passages searched for the related questions of a chosen passage


@dataclass(frozen=True)
class Style:
    """ANSI colours on a terminal; plain text when piped or when NO_COLOR is set (no-color.org)."""

    on: bool = False

    @classmethod
    def of(cls, stream: TextIO) -> "Style":
        return cls(stream.isatty() and not os.environ.get("NO_COLOR"))

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on and text else text

    def title(self, text: str) -> str:
        return self._paint("1", text)

    def number(self, text: str) -> str:
        return self._paint("36", text)

    def quiet(self, text: str) -> str:
        return self._paint("2", text)


@dataclass(frozen=True)
class Option:
    """A numbered choice under an answer: a passage to open (``passage``, its id), a question to
    ask (a refusal's example), or, with neither, "都不是"."""

    label: str
    passage: str = ""
    question: str = ""


@dataclass(frozen=True)
class Shown:
    """What was shown last, which the next number refers to: its view and its options."""

    view: View
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Event:
    """One line for the question log (``QuestionLog.record``'s arguments after the user)."""

    kind: str
    question: str
    best_score: float | None
    shown: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    """What one typed line gives: the text to print, what the next number refers to, what to log."""

    text: str
    shown: Shown | None
    events: tuple[Event, ...] = ()


def options_of(shown: View, m: Messages) -> tuple[Option, ...]:
    if shown.kind is Outcome.ANSWER:
        return tuple(Option(c.label, passage=c.id) for c in shown.related)
    if shown.kind is Outcome.CLARIFY:
        return (*(Option(c.label, passage=c.id) for c in shown.choices), Option(m.console_none_of_these))
    return tuple(Option(example, question=example) for example in shown.examples)


def render(shown: View, options: tuple[Option, ...], m: Messages, style: Style = Style(), full: bool = False,
           replies: bool = True) -> str:
    """A view as text: the answer (``full``: the whole passage) or the refusal, the options under
    their heading, the short disclaimer. ``replies``: the prompt awaits a reply, so the options
    are numbered to type; else (one question from the command line) they are a plain list, "都不是"
    is left out and the whole passage is offered as ``--full``."""
    blocks = list(shown.notes)
    if shown.kind is Outcome.ANSWER:
        lines = [style.title(f"【{shown.title}】"), shown.full if full else shown.short]
        if shown.more and not full:
            lines.append(style.quiet(m.console_expand_hint if replies else m.oneshot_expand_hint))
        if shown.source:
            lines.append(style.quiet(f"—— 来源：{shown.source}"))
        blocks.append("\n".join(lines))
        heading = m.related_heading
    elif shown.kind is Outcome.CLARIFY:
        heading = m.clarify_heading
    else:
        blocks.append("\n".join(filter(None, [shown.reason, shown.hint])))
        heading = m.examples_heading
    listed = options if replies else tuple(o for o in options if o.passage or o.question)
    if listed:
        marks = (style.number(f"{n:>2}.") if replies else " ·" for n in range(1, len(listed) + 1))
        blocks.append(heading + "\n" + "\n".join(f"{mark} {option.label}" for mark, option in zip(marks, listed)))
    if shown.kind is Outcome.REFUSE:
        blocks.append(m.official_channel)
    return "\n\n".join([*blocks, style.quiet("⚠️ " + shown.disclaimer_short)])


def about(faq: FAQ) -> str:
    """What the bot knows: each article (or Q&A file) with its number of passages, and examples."""
    counts: dict[str, int] = {}
    for passage in faq.knowledge.passages:
        title = passage.article or passage.source
        counts[title] = counts.get(title, 0) + 1
    m = faq.messages
    lines = [m.console_knows.format(sources=len(counts), passages=len(faq.knowledge.passages))]
    lines += [m.console_source_line.format(title=title, passages=n) for title, n in counts.items()]
    examples = m.examples_heading + "\n" + "\n".join(f"· {e}" for e in m.examples)
    return "\n".join(lines) + "\n\n" + examples + "\n\n⚠️ " + m.disclaimer


def answer_to(faq: FAQ, question: str, top_k: int) -> Answer:
    """The answer, the core seeing the question composed (``question_text``), the user seeing it as typed."""
    return replace(faq.ask(question_text(question), top_k), question=question)


def chosen(faq: FAQ, passage_id: str) -> Answer:
    """The answer to a passage the user chose by its number (an id of this knowledge)."""
    passage = next(p for p in faq.knowledge.passages if p.id == passage_id)
    return compose_chosen(passage, faq.search(passage.question, k=RELATED_SEARCH), faq.messages)


def respond(faq: FAQ, line: str, last: Shown | None, top_k: int, style: Style = Style()) -> Turn:
    """What one typed line shows: a number picks from ``last``'s options, 0 / 展开 shows the
    current answer whole, anything else is a question. Refusals, "都不是" and a clarification's
    pick are logged (see ``Event``) with the kinds Telegram uses."""
    m = faq.messages
    typed = unicodedata.normalize("NFKC", line).strip()
    if typed in EXPAND:
        if last is None or last.view.kind is not Outcome.ANSWER:
            return Turn(m.console_nothing_to_expand, last)
        return Turn(render(last.view, last.options, m, style, full=True), last)
    number = _choice(typed, last.options) if last is not None and last.options else None
    if number is None and typed in NONE_OF_THESE:
        return Turn(m.console_nothing_to_decline, last)
    if number is not None:
        if not 1 <= number <= len(last.options):
            return Turn(m.console_no_such_choice.format(number=number, choices=f"1–{len(last.options)}"), last)
        return _pick(faq, last, last.options[number - 1], top_k, style)
    return _show(faq, answer_to(faq, line.strip(), top_k), style)


def _choice(typed: str, options: tuple[Option, ...]) -> int | None:
    """The option a typed line picks, by number ("2", "第二个", "第2项") or, for the "都不是"
    option, in words; None when the line is not a choice (then it is a question)."""
    if typed in NONE_OF_THESE:
        return next((n for n, o in enumerate(options, start=1) if not (o.passage or o.question)), None)
    match = _ORDINAL.fullmatch(typed)
    if not match:
        return None
    number = match.group(1)
    return int(number) if number.isdecimal() else _NUMERALS[number]


def _show(faq: FAQ, answer: Answer, style: Style, events: tuple[Event, ...] = ()) -> Turn:
    shown = view(answer)
    options = options_of(shown, faq.messages)
    if shown.kind is Outcome.REFUSE and Refusal(answer.refusal).asked:
        events += (Event("refused", answer.question, answer.best_score),)
    return Turn(render(shown, options, faq.messages, style), Shown(shown, options), events)


def _pick(faq: FAQ, last: Shown, option: Option, top_k: int, style: Style) -> Turn:
    clarify = last.view.kind is Outcome.CLARIFY
    candidates = tuple(o.passage for o in last.options if o.passage)
    if option.question:
        return _show(faq, answer_to(faq, option.question, top_k), style)
    if not option.passage:  # "都不是": the question goes to the maintainer, unanswered
        return Turn(faq.messages.console_none_noted, None, (Event("none_of_these", last.view.question, None, candidates),))
    pick = (Event("clarify_pick", last.view.question, None, (option.passage,)),) if clarify else ()
    return _show(faq, chosen(faq, option.passage), style, pick)


def build_progress(stream: TextIO = sys.stderr, after: float = 1.0) -> Callable[[int, int], None] | None:
    """A progress bar for a long index build: on a terminal only, and only once it has taken
    ``after`` seconds (a quick start stays silent)."""
    if not stream.isatty():
        return None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        if time.monotonic() - started < after or not total:
            return
        filled = 30 * done // total
        end = "\n" if done >= total else ""
        print(f"\r建立索引 [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,}", end=end, file=stream, flush=True)

    return show


def _enable_line_editing() -> None:
    """Arrow keys, and history kept across sessions, in input(), where the platform has readline."""
    try:
        import readline
    except ImportError:
        return
    history = log_dir() / "console_history"
    if history.is_symlink():  # planted in a shared folder: never read or overwrite what it points to
        return
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            history.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if history.is_symlink():
                return
            readline.write_history_file(history)
            history.chmod(0o600)  # what was asked stays the user's
        except OSError:
            pass

    atexit.register(save)


def _open_log(stderr: TextIO) -> QuestionLog | None:
    """Telegram's question log, so ``faqbot report`` sees the console's refusals too; without
    it (a folder that is not this user's, a bad size setting) the console still answers."""
    try:
        return QuestionLog.default()
    except (OSError, ValueError) as error:
        print(f"faqbot: unanswered questions are not logged: {error}", file=stderr)
        return None


def interactive(faq: FAQ, top_k: int, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                stderr: TextIO = sys.stderr) -> int:
    """Prompt, answer, repeat, until /quit or Ctrl-D. Ctrl-C clears the line (or stops an
    answer being computed) and prompts again, as a shell does."""
    if stdin.isatty():
        _enable_line_editing()
    style, log = Style.of(stdout), _open_log(stderr)
    m = faq.messages
    print(m.console_greeting.format(passages=len(faq.knowledge.passages)) + m.console_help + "\n" + m.console_usage,
          file=stdout)
    last: Shown | None = None
    while True:
        try:
            line = input(m.console_prompt) if stdin is sys.stdin else _read_line(stdin, stdout, m.console_prompt)
        except EOFError:
            print(file=stdout)
            break
        except KeyboardInterrupt:
            print(file=stdout)
            continue
        command = line.strip()
        if command.lower().rstrip("。.!！") in QUIT:
            break
        if command in ("/help", "/?", "/about"):
            head = m.console_help + "\n" + m.console_usage + "\n\n" if command != "/about" else ""
            print(head + about(faq) + "\n", file=stdout)
            continue
        if command.startswith("/"):
            print(m.console_unknown_command + "\n", file=stdout)
            continue
        if not command:
            continue
        try:
            turn = respond(faq, line, last, top_k, style)
        except KeyboardInterrupt:
            print(file=stdout)
            continue
        print(turn.text + "\n", file=stdout, flush=True)
        last = turn.shown
        for event in turn.events if log else ():
            try:
                log.record(event.kind, CONSOLE_USER, event.question, event.best_score, event.shown)
            except OSError as error:
                print(f"faqbot: could not log the question: {error}", file=stderr)
    print(m.console_goodbye, file=stdout)
    return 0


def _read_line(stdin: TextIO, stdout: TextIO, prompt: str) -> str:
    print(prompt, end="", file=stdout, flush=True)
    line = stdin.readline()
    if not line:
        raise EOFError
    return line


def ask_once(faq: FAQ, question: str, top_k: int, as_json: bool, full: bool = False,
             stdout: TextIO = sys.stdout) -> int:
    """What the console shows for one question (``full``: the whole passage), or its JSON."""
    answer = answer_to(faq, question, top_k)
    if as_json:
        text = json.dumps(to_json(answer), ensure_ascii=False)
    else:
        shown = view(answer)
        text = render(shown, options_of(shown, faq.messages), faq.messages, Style.of(stdout), full, replies=False)
    print(text, file=stdout)
    return 0


def ask_batch(faq: FAQ, top_k: int, stdin: TextIO, stdout: TextIO = sys.stdout) -> int:
    """One JSON object per input line, in order, whatever the line holds."""
    for line in stdin:
        question = line.rstrip("\r\n")
        print(json.dumps(to_json(answer_to(faq, question, top_k)), ensure_ascii=False), file=stdout, flush=True)
    return 0
