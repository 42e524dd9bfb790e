"""The console front end: an interactive prompt, and the one-shot / batch modes for scripts."""

from __future__ import annotations

import atexit
import json
import sys
import time
from dataclasses import replace
from typing import Callable, TextIO

from .faq import FAQ
from .feedback import log_dir
from .reply import Answer, render_text, to_json
from .text import question_text



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


def interactive(faq: FAQ, top_k: int, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Prompt, answer, repeat, until /quit, Ctrl-D or Ctrl-C."""
    if stdin.isatty():
        _enable_line_editing()
    words = faq.messages
    print(words.console_greeting.format(passages=len(faq.knowledge.passages)) + words.console_help, file=stdout)
    try:
        while True:
            try:
                line = input(words.console_prompt) if stdin is sys.stdin else _read_line(stdin, stdout, words.console_prompt)
            except EOFError:
                break
            question = line.strip()
            if question in ("/quit", "/exit", "/q"):
                break
            if question in ("/help", "/?"):
                print(words.console_help, file=stdout)
            elif question:
                print(render_text(_ask(faq, question, top_k)) + "\n", file=stdout, flush=True)
    except KeyboardInterrupt:
        print(file=stdout)
    print(words.console_goodbye, file=stdout)
    return 0


def _ask(faq: FAQ, question: str, top_k: int) -> Answer:
    """The answer, the core seeing the question composed (``question_text``), the user seeing it as typed."""
    return replace(faq.ask(question_text(question), top_k), question=question)


def _read_line(stdin: TextIO, stdout: TextIO, prompt: str) -> str:
    print(prompt, end="", file=stdout, flush=True)
    line = stdin.readline()
    if not line:
        raise EOFError
    return line


def ask_once(faq: FAQ, question: str, top_k: int, as_json: bool, stdout: TextIO = sys.stdout) -> int:
    answer = _ask(faq, question, top_k)
    print(json.dumps(to_json(answer), ensure_ascii=False) if as_json else render_text(answer), file=stdout)
    return 0


def ask_batch(faq: FAQ, top_k: int, stdin: TextIO, stdout: TextIO = sys.stdout) -> int:
    """One JSON object per input line, in order, whatever the line holds."""
    for line in stdin:
        question = line.rstrip("\r\n")
        print(json.dumps(to_json(_ask(faq, question, top_k)), ensure_ascii=False), file=stdout, flush=True)
    return 0
