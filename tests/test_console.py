"""The console as a person meets it: a short answer, numbered related questions and
clarification choices that a number opens, 0 / 展开 for the whole passage, /about, Ctrl-C that
clears the line, refusals logged for the maintainer, colours only on a terminal. And a question
the core must see composed (U+FDFA is eighteen characters under NFKC) never crashes it."""

import io
import json
import os
import pty
import re
import select
import signal
import stat
import sys
import time
from dataclasses import replace

import pytest

from bot.console import Shown, Style, about, ask_once, interactive, options_of, render, respond
from bot.decision import Outcome
from bot.feedback import read_log
from bot.reply import compose, view
from conftest import ROOT, run_faqbot

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

EXPANDING = "\ufdfa" * 1000  # ﷺ: one character, eighteen once composed


def _edit_then_exit(monkeypatch) -> None:
    """Line editing switched on, then what it registered for the exit run (the history saved)."""
    import atexit

    from bot import console

    saved = []
    monkeypatch.setattr(atexit, "register", saved.append)
    console._enable_line_editing()
    for save in saved:
        save()


def test_a_question_that_composition_multiplies_gets_an_answer_in_one_shot_mode():
    result = run_faqbot("ask", "--json", EXPANDING)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert answer["question"] == EXPANDING and answer["disclaimer"]


def test_a_question_that_composition_multiplies_gets_an_answer_in_batch_mode():
    lines = ["借呗升级失败怎么办", "\ufdfa" * 40, "\u3300" * 600, "借呗额度异常"]
    result = run_faqbot("ask", "--json", "-", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == lines
    assert answers[0]["answered"] and answers[3]["answered"]


def test_a_planted_history_link_is_neither_read_nor_overwritten(tmp_path, monkeypatch):
    target = tmp_path / "precious.txt"
    target.write_text("不能被覆盖的内容\n", encoding="utf-8")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "console_history").symlink_to(target)
    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    _edit_then_exit(monkeypatch)
    assert target.read_text(encoding="utf-8") == "不能被覆盖的内容\n"


def test_the_history_is_kept_private(tmp_path, monkeypatch):
    import stat

    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    _edit_then_exit(monkeypatch)
    assert stat.S_IMODE((tmp_path / "logs" / "console_history").stat().st_mode) == 0o600


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def m(faq):
    """The bot's words, the console's among them (``resources/messages.toml``)."""
    return faq.messages


def test_typing_a_related_questions_number_opens_that_passage_with_its_own_related_questions(faq):
    first = respond(faq, "借呗升级失败怎么办", None, 3)
    assert first.shown.view.kind is Outcome.ANSWER and len(first.shown.options) >= 2
    second = first.shown.options[1]
    assert f" 2. {second.label}" in first.text
    opened = respond(faq, "２", first.shown, 3)  # a full-width digit is a digit too
    assert opened.shown.view.passage == second.passage and f"【{second.label}】" in opened.text
    assert opened.shown.options and second.passage not in {o.passage for o in opened.shown.options}


def test_zero_or_zhankai_shows_the_current_answer_whole(faq, m):
    first = respond(faq, "借呗升级失败怎么办", None, 3)
    assert first.shown.view.more and m.console_expand_hint in first.text
    for typed in ("0", "展开"):
        whole = respond(faq, typed, first.shown, 3)
        assert first.shown.view.full in whole.text and m.console_expand_hint not in whole.text
        assert whole.shown == first.shown  # the numbers still refer to the same related questions
    assert respond(faq, "展开", None, 3).text == m.console_nothing_to_expand


def test_a_number_that_is_not_offered_says_which_are_and_keeps_the_choices(faq):
    first = respond(faq, "借呗升级失败怎么办", None, 3)
    wrong = respond(faq, "9", first.shown, 3)
    assert wrong.shown == first.shown and "9" in wrong.text and f"1–{len(first.shown.options)}" in wrong.text


def _clarification(faq, question: str = "借呗升级失败") -> Shown:
    result = faq.search(question, k=8)
    shown = view(compose(replace(result, clarify=True), faq.messages))
    assert shown.kind is Outcome.CLARIFY
    return Shown(shown, options_of(shown, faq.messages))


def test_a_clarification_numbers_its_candidates_and_none_of_these_last(faq, m):
    shown = _clarification(faq)
    text = render(shown.view, shown.options, m)
    assert faq.messages.clarify_heading in text
    assert text.index(shown.options[0].label) < text.index(f"{len(shown.options):>2}. {m.console_none_of_these}")
    pick = respond(faq, "1", shown, 3)
    assert pick.shown.view.passage == shown.options[0].passage
    assert [(e.kind, e.shown) for e in pick.events] == [("clarify_pick", (shown.options[0].passage,))]
    none = respond(faq, str(len(shown.options)), shown, 3)
    assert none.text == m.console_none_noted and none.shown is None
    assert [(e.kind, e.question) for e in none.events] == [("none_of_these", shown.view.question)]
    assert set(none.events[0].shown) == {o.passage for o in shown.options if o.passage}


def test_a_choice_can_be_typed_in_words(faq, m):
    shown = _clarification(faq)
    for typed in ("第二个", "第2项", "２"):
        assert respond(faq, typed, shown, 3).shown.view.passage == shown.options[1].passage
    none = respond(faq, "都不是", shown, 3)
    assert none.text == m.console_none_noted and [e.kind for e in none.events] == ["none_of_these"]
    assert respond(faq, "第九个", shown, 3).text == m.console_no_such_choice.format(
        number=9, choices=f"1–{len(shown.options)}")
    answered = respond(faq, "借呗升级失败怎么办", None, 3).shown  # its options are related questions: none to decline
    for last in (None, answered):
        declined = respond(faq, "都不是", last, 3)
        assert declined.text == m.console_nothing_to_decline and not declined.events and declined.shown is last


def test_a_refusal_offers_numbered_examples_that_a_number_asks(faq):
    refused = respond(faq, "今天天气怎么样", None, 3)
    assert refused.shown.view.kind is Outcome.REFUSE and [e.kind for e in refused.events] == ["refused"]
    asked = respond(faq, "1", refused.shown, 3)
    assert asked.shown.view.kind is not Outcome.REFUSE and not asked.events


def test_console_refusals_reach_the_maintainers_log_pseudonymised_and_private(faq, monkeypatch, tmp_path):
    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    screen = io.StringIO()
    interactive(faq, 3, io.StringIO("今天天气怎么样\n/aboot\n你好\n借呗升级失败怎么办\n/quit\n"), screen, io.StringIO())
    log = tmp_path / "logs" / "unanswered.jsonl"
    entries = read_log(log)
    # a mistyped command is not a question, nor is a greeting
    assert [(e["kind"], e["question"]) for e in entries] == [("refused", "今天天气怎么样")]
    assert faq.messages.console_unknown_command in screen.getvalue()
    assert entries[0]["chat"] != "console" and len(entries[0]["chat"]) == 16
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    report = run_faqbot("report", env={"FAQBOT_LOG_DIR": str(tmp_path / "logs")})
    assert "今天天气怎么样" in report.stdout


@pytest.mark.parametrize("leave", ["/quit", "/QUIT", "exit", "退出", "再见！"])
def test_the_usual_ways_of_leaving_end_the_console(faq, leave):
    screen = io.StringIO()
    assert interactive(faq, 3, io.StringIO(f"{leave}\n借呗升级失败怎么办\n"), screen, io.StringIO()) == 0
    assert screen.getvalue().rstrip().endswith(faq.messages.console_goodbye) and "来源：" not in screen.getvalue()


def test_an_unusable_log_folder_is_said_once_and_the_console_still_answers(faq, monkeypatch, tmp_path):
    (tmp_path / "file").write_text("", encoding="utf-8")
    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "file" / "logs"))
    screen, errors = io.StringIO(), io.StringIO()
    assert interactive(faq, 3, io.StringIO("今天天气怎么样\n借呗升级失败怎么办\n"), screen, errors) == 0
    assert errors.getvalue().count("not logged") == 1 and "来源：" in screen.getvalue()


def test_about_lists_the_articles_and_example_questions(faq):
    text = about(faq)
    titles = {p.article for p in faq.knowledge.passages}
    assert all(title in text for title in titles) and faq.messages.examples[0] in text
    assert ".txt" not in text


def test_colours_on_a_terminal_only_and_never_with_no_color(faq, m, monkeypatch):
    shown = respond(faq, "借呗升级失败怎么办", None, 3).shown
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in render(shown.view, shown.options, m, Style.of(Terminal()))
    assert "\x1b[" not in render(shown.view, shown.options, m, Style.of(io.StringIO()))
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in render(shown.view, shown.options, m, Style.of(Terminal()))


def test_a_real_terminal_session_ctrl_c_clears_the_line_numbers_open_and_about_lists():
    """The real console in a pseudo-terminal. Every wait is for what the console prints, with
    limits a machine ten times slower than a laptop meets; nothing is timed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        # Ctrl-C must reach the console as a person's would, even when pytest itself was started
        # with SIGINT ignored (nohup, a CI runner, `cmd &` in a script): exec keeps an ignored signal ignored.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, "-m", "bot"])
    raw = b""

    def screen(since: int = 0) -> str:
        return ANSI.sub("", raw.decode("utf-8", errors="replace"))[since:]

    def wait_for(marker: str, since: int, timeout: float = 600) -> bool:
        nonlocal raw
        deadline = time.monotonic() + timeout
        while marker not in screen(since) and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    raw += os.read(fd, 65536)
                except OSError:
                    break
        return marker in screen(since)

    def send(keys: str, wait: str = "问> ") -> str:
        """Type ``keys``; what the console printed until ``wait`` came back."""
        since = len(screen())
        os.write(fd, keys.encode())
        wait_for(wait, since)
        return screen(since)

    left = False
    try:
        assert wait_for("问> ", 0)
        answer = send("借呗升级失败怎么办\r")
        assert "猜你想问" in answer and "来源：" in answer
        second = re.search(r" 2\. (.+)", answer).group(1).strip()
        assert f"【{second}】" in send("2\r")
        assert "借呗额度" in send("借呗额度", wait="借呗额度")  # typed and echoed by the line editor, not sent
        cleared = False
        for _ in range(3):  # a Ctrl-C that lands before readline waits is taken at the next key: press again
            since = len(screen())
            os.write(fd, b"\x03")
            if wait_for("问> ", since, timeout=60):
                cleared = True
                break
        assert cleared
        listing = send("/about\r")
        assert "我根据" in listing and "借呗额度/about" not in screen() and "我可以回答这类问题" in listing
        assert "再见" in send("\x04", wait="再见")  # Ctrl-D leaves
        left = True
    finally:
        deadline = time.monotonic() + (300 if left else 0)
        while (finished := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        if finished[0] == 0:  # never hang the suite: the assertion below reports it
            os.kill(pid, 9)
            finished = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(finished[1]) == 0 and "Traceback" not in screen()


def test_one_question_from_the_command_line_offers_nothing_to_type(faq):
    """`faqbot ask` ends after its answer: its options are a plain list (no numbers to type, no
    "都不是"), and the whole passage is offered as --full, not "输入 0"."""
    texts = []
    for question in ("借呗升级失败怎么办", "今天天气怎么样"):
        screen = io.StringIO()
        assert ask_once(faq, question, 3, as_json=False, stdout=screen) == 0
        text = screen.getvalue()
        labels = [o.label for o in options_of(view(faq.ask(question)), faq.messages) if o.passage or o.question]
        lines = text.splitlines()
        assert labels and all(f" · {label}" in lines for label in labels), text
        assert not any(re.fullmatch(rf"\s*\d+\.\s*{re.escape(label)}", line) for label in labels for line in lines)
        assert faq.messages.console_expand_hint not in text and faq.messages.console_none_of_these not in text
        texts.append(text)
    assert faq.messages.oneshot_expand_hint in texts[0]  # a long passage, shortened
