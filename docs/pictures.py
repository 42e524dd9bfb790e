"""Makes the demo log and the README's report picture (the other picture is a command):

    faqbot calibrate --max-false-answers 0.13 --out /tmp/calibration.json --plot docs/calibration.png  # the shipped one
    python docs/pictures.py            # docs/demo_log.jsonl, docs/report.png, the suggestions printed

The log: the 50 questions of ``docs/demo_questions.txt`` (written for this demo) asked of the FAQ
core, logged through ``QuestionLog`` as the Telegram bot logs them: a refusal as "refused", and
what the made-up user then does (a mark before the question) as "downvote", "should_answer",
"clarify_pick" or "none_of_these". Chats are 12 made-up users, hashed with a fixed salt. The
entries' dates are then spread over six weeks (the demo is asked in one sitting; the weekly
picture needs weeks). The picture's labels are Chinese when the machine has a CJK font
(WenQuanYi Micro Hei here), else numbered.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.config import shipped_knowledge
from bot.faq import FAQ
from bot.feedback import Pseudonymizer, QuestionLog, read_log, unanswered
from bot.plots import plot_report
from bot.suggest import render_suggestions, suggest

DOCS = Path(__file__).resolve().parent
ACTIONS = {"👎": ("downvote", "should_answer"), "选": ("clarify_pick", None), "都不是": ("none_of_these", None)}
WEEKS = 6


def demo_questions(path: Path) -> list[tuple[str | None, str]]:
    """(mark, question) per line; comments and blank lines skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            mark, _, rest = line.partition(" ")
            rows.append((mark, rest.strip()) if mark in ACTIONS and rest else (None, line.strip()))
    return rows


def drive(faq: FAQ, rows: list[tuple[str | None, str]], log: QuestionLog) -> None:
    """Ask every question; log what the Telegram bot would log for it and for the user's press."""
    for number, (mark, question) in enumerate(rows):
        chat = 1000 + number % 12
        answer = faq.ask(question)
        shown = [hit.passage.id for hit in answer.hits]
        if not answer.answered:
            log.record("refused", chat, question, answer.best_score, [])
        if mark is None:
            continue
        on_answer, on_refusal = ACTIONS[mark]
        if not answer.answered and on_refusal:
            log.record(on_refusal, chat, question, answer.best_score, [])
        elif answer.answered and mark == "👎":
            log.record(on_answer, chat, question, answer.best_score, shown[:1])
        elif answer.clarify and mark == "选":
            log.record(on_answer, chat, question, answer.best_score, shown[:1])
        elif answer.clarify and mark == "都不是":
            log.record(on_answer, chat, question, answer.best_score, shown)


def spread_over_weeks(path: Path, end: datetime) -> None:
    """Rewrite the entries' times: the n-th of N on day ``n·7·WEEKS/N`` before ``end``, in order."""
    entries = read_log(path, files=1)
    for n, entry in enumerate(entries):
        when = end - timedelta(days=7 * WEEKS * (len(entries) - n) / len(entries))
        entry["time"] = when.strftime("%Y-%m-%dT%H:%M:%S%z")
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")


def main() -> int:
    faq = FAQ.load(shipped_knowledge())
    log_path = DOCS / "demo_log.jsonl"
    log_path.unlink(missing_ok=True)
    drive(faq, demo_questions(DOCS / "demo_questions.txt"), QuestionLog(log_path, Pseudonymizer(b"demo")))
    spread_over_weeks(log_path, datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
    entries = read_log(log_path, files=1)
    result = suggest(faq, entries)
    print(render_suggestions(result))
    plot_report(unanswered(entries), [s.group for s in result.suggestions], DOCS / "report.png")
    print(f"\n{len(entries)} log entries; pictures in {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
