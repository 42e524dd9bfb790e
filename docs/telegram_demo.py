"""The maintainer's-loop demo through Telegram: the real ``faqbot telegram`` process, long polling
the tests' Bot API server on 127.0.0.1 (real HTTP), is asked the 50 questions of
``docs/demo_questions.txt`` from 12 made-up private chats, and the made-up users press the buttons
its replies carry, as each question's mark says; then ``faqbot report --suggest`` reads the log the
bot wrote::

    python docs/telegram_demo.py       # docs/telegram_demo_log.jsonl, docs/telegram_demo_report.txt

A mark's press depends on what the bot replied, since the knowledge (not the demo) decides
that: 👎 and 都不是 both say "not what I asked", so the user presses the reply's rejecting button
(👎 under an answer, 这个问题应该能回答 under a refusal, 都不是 under a clarification); 选 taps a
clarification's first candidate, and under an answer presses nothing. The summary counts the
replies of each kind and the presses. The bot writes its log and salt in a
temporary folder, with its default per-chat limit; the log (salted chat hashes and our own demo
questions only) is copied here 0600, as the bot writes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT / "tests"), str(DOCS)]

from bot.feedback import LOG_FILE, read_log  # noqa: E402 (after the path set-up)
from fake_bot_api import BotProcess, FakeBotAPI, new_token  # noqa: E402
from pictures import demo_questions  # noqa: E402
from test_telegram import answered, ask, buttons, press, reply_to  # noqa: E402

CHATS = 12
FIRST_CHAT = 880_001  # made-up private chats (and their users) 880001…880012
SHOULD_ANSWER = "这个问题应该能回答"


REJECT = {"answer": "👎", "refusal": SHOULD_ANSWER, "clarification": "都不是"}  # "not what I asked", per reply


def pressed_for(mark: str | None, kind: str, candidates: list[str]) -> str | None:
    """The button a user with ``mark`` presses on a reply of ``kind``; None for none."""
    if mark in ("👎", "都不是"):
        return REJECT[kind]
    return candidates[0] if mark == "选" and candidates else None


def reply_kind(labels: list[str], candidates: list[str]) -> str:
    return "clarification" if candidates else "refusal" if SHOULD_ANSWER in labels else "answer"


def drive(api: FakeBotAPI, rows: list[tuple[str | None, str]]) -> Counter[str]:
    """Ask each question from its chat, wait for the reply, press what its mark says; a tally."""
    tally: Counter[str] = Counter()
    for number, (mark, question) in enumerate(rows):
        chat = FIRST_CHAT + number % CHATS
        message, _ = ask(api, question, chat_id=chat, user_id=chat)
        reply = reply_to(api, message)
        labels = [b["text"] for b in buttons(reply)]
        candidates = [b["text"] for b in buttons(reply) if b["callback_data"].startswith("pick:")]
        kind = reply_kind(labels, candidates)
        tally[f"{kind} replies"] += 1
        label = pressed_for(mark, kind, candidates)
        if label is None:
            if mark:
                tally[f"{mark} on {kind}: nothing pressed"] += 1
            continue
        answered(api, press(api, reply, label, user_id=chat))
        if label in candidates:
            reply_to(api, reply.result)  # the picked passage's answer
        tally[f"{mark} on {kind}: pressed {label if label not in candidates else 'a candidate'}"] += 1
    return tally


def main() -> int:
    rows = demo_questions(DOCS / "demo_questions.txt")
    token = new_token()
    with tempfile.TemporaryDirectory(prefix="faqbot-telegram-demo-") as tmp, FakeBotAPI(token) as api:
        bot = BotProcess(Path(tmp), token, api.base_url).wait_until_serving(api)
        try:
            tally = drive(api, rows)
        finally:
            code = bot.stop()
        if code != 0:
            print(bot.output(), file=sys.stderr)
            return code
        log = DOCS / "telegram_demo_log.jsonl"
        log.unlink(missing_ok=True)
        shutil.copyfile(bot.log_dir / LOG_FILE, log)
        os.chmod(log, 0o600)
    kinds = Counter(entry["kind"] for entry in read_log(log, files=1))
    report = subprocess.run([sys.executable, "-m", "bot", "report", "--suggest", "--log", str(log)], cwd=ROOT,
                            capture_output=True, text=True, encoding="utf-8", check=True,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    (DOCS / "telegram_demo_report.txt").write_text(report.stdout, encoding="utf-8")
    print(report.stdout)
    print(f"{len(rows)} questions from {CHATS} chats; " + ", ".join(f"{k}: {n}" for k, n in sorted(tally.items())),
          file=sys.stderr)
    print("log entries: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
