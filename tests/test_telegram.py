"""The Telegram bot as a user meets it: the real ``faqbot telegram`` process, long polling a small
Bot API server of our own on 127.0.0.1 (real HTTP), which queues updates and records what the bot sends."""

from __future__ import annotations

import html
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_faqbot
from fake_bot_api import Call, FakeBotAPI, callback_update

TOKEN = f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(27)}"
REPORT = Path("/tmp/faqbot_telegram_e2e.txt")
PRIVATE, OTHER_PRIVATE, GROUP = 73501981, 73501982, -1007350198
USER = 73509001
STICKER = {"sticker": {"file_id": "CAACAgIAAxk", "file_unique_id": "AgAD1", "type": "regular", "width": 512,
                       "height": 512, "is_animated": False, "is_video": False}}
PHOTO = {"photo": [{"file_id": "AgACAgIAAxk", "file_unique_id": "AQAD2", "width": 90, "height": 90}]}
VOICE = {"voice": {"file_id": "AwACAgIAAxk", "file_unique_id": "AgAD3", "duration": 2}}
DOCUMENT = {"document": {"file_id": "BQACAgIAAxk", "file_unique_id": "AgAD4", "file_name": "账单.pdf"}}


class BotProcess:
    """``python -m bot telegram`` in a child process, its output in files (a pipe could fill up)."""

    def __init__(self, tmp: Path, token: str, base_url: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
        env.update(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE=base_url, PYTHONIOENCODING="utf-8")
        self.out, self.err = tmp / "stdout.txt", tmp / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "telegram"], cwd=ROOT, env=env,
                                            stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return "".join(path.read_text(encoding="utf-8", errors="replace") for path in (self.out, self.err))

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("the bot did not stop within 20 s of SIGTERM")
        return self.process.returncode


@pytest.fixture(scope="module")
def api():
    server = FakeBotAPI(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot(api, tmp_path_factory):
    process = BotProcess(tmp_path_factory.mktemp("bot"), TOKEN, api.base_url)
    try:
        api.wait_for("setMyCommands", timeout=60)
        api.wait_for("getUpdates", timeout=30)
    except AssertionError:
        process.stop()
        raise AssertionError("the bot did not start:\n" + process.output())
    yield process
    process.stop()


def ask(api: FakeBotAPI, text: str | None, chat_id: int = PRIVATE, **kwargs) -> tuple[dict, float]:
    """A user sends a message; returns it and the moment it became available to getUpdates."""
    chat_type = "private" if chat_id > 0 else "supergroup"
    message = api.user_message(text, chat_id=chat_id, user_id=USER, chat_type=chat_type, **kwargs)
    return message, api.push({"message": message})


def reply_to(api: FakeBotAPI, message: dict, timeout: float = 30) -> Call:
    """The bot's message that replies to ``message``."""
    return api.wait_for("sendMessage", lambda call: _replies_to(call, message), timeout=timeout)


def _replies_to(call: Call, message: dict) -> bool:
    return (call.params.get("chat_id") == message["chat"]["id"]
            and (call.params.get("reply_parameters") or {}).get("message_id") == message["message_id"])


def _answers(call: Call, press: dict) -> bool:
    return call.params["callback_query_id"] == press["callback_query"]["id"]


def buttons(call: Call) -> list[dict]:
    return [button for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", []) for button in row]


def settle(api: FakeBotAPI, seconds: float = 0.5) -> None:
    """Let the bot fetch and handle what is queued before asserting that it said nothing."""
    marker, _ = ask(api, "借呗额度异常", chat_id=OTHER_PRIVATE)
    reply_to(api, marker)
    time.sleep(seconds)


def test_a_private_question_gets_the_right_passage_the_disclaimer_and_buttons(api, bot, faq):
    question, pushed = ask(api, "借呗升级失败怎么办")
    call = reply_to(api, question)
    latency_ms = (call.time - pushed) * 1000
    text = call.params["text"]
    assert call.params["parse_mode"] == "HTML"
    assert "来源：000_364e853100879686.txt" in text and "升级失败" in text
    assert html.escape(faq.messages.disclaimer_short) in text
    data = [button["callback_data"] for button in buttons(call)]
    assert [button["text"] for button in buttons(call)] == ["👍", "👎", "更多结果"]
    assert data[0].startswith("fb:+:000_364e853100879686#") and data[1].startswith("fb:-:")
    assert all(len(d.encode("utf-8")) <= 64 for d in data)
    again, pushed = ask(api, "借呗升级失败怎么办")
    again_ms = (reply_to(api, again).time - pushed) * 1000
    sent = {k: call.params[k] for k in ("parse_mode", "reply_parameters", "reply_markup")}
    REPORT.write_text(f"question: 借呗升级失败怎么办\nupdate -> sendMessage: {latency_ms:.1f} ms "
                      f"(first question after start), {again_ms:.1f} ms (asked again)\n"
                      f"sendMessage parameters: {json.dumps(sent, ensure_ascii=False)}\n"
                      f"raw HTML text as sent:\n{text}\n", encoding="utf-8")
    print(f"\nupdate -> sendMessage latency: {latency_ms:.1f} ms, then {again_ms:.1f} ms\n{text}")
    assert latency_ms < 5000


def test_the_command_menu_is_set_at_start(api, bot):
    commands = api.wait_for("setMyCommands").params["commands"]
    assert [c["command"] for c in commands] == ["start", "ask", "help", "about"]


def test_start_greets_says_what_it_knows_and_offers_three_examples(api, bot, faq):
    start, _ = ask(api, "/start")
    call = reply_to(api, start)
    assert "借呗常见问题助手" in call.params["text"] and f"{len(faq.knowledge.passages)} 段" in call.params["text"]
    examples = buttons(call)
    assert [b["text"] for b in examples] == list(faq.messages.examples)
    api.push(callback_update(api.message(PRIVATE, call.result["message_id"]), examples[0]["callback_data"], USER))
    answer = api.wait_for("sendMessage", lambda c: _replies_to(c, call.result))
    assert "来源：000_364e853100879686.txt" in answer.params["text"]


def test_help_and_about(api, bot, faq):
    help_message, _ = ask(api, "/help")
    assert "/ask" in reply_to(api, help_message).params["text"]
    about, _ = ask(api, "/about")
    text = html.unescape(reply_to(api, about).params["text"])
    assert faq.messages.disclaimer in text and "000_364e853100879686.txt" in text


@pytest.mark.parametrize("content", [STICKER, PHOTO, VOICE, DOCUMENT], ids=["sticker", "photo", "voice", "file"])
def test_a_sticker_photo_voice_note_or_file_is_asked_to_come_as_text(api, bot, content):
    message, _ = ask(api, None, **content)
    assert "文字" in reply_to(api, message).params["text"]


def test_more_results_feedback_and_old_buttons(api, bot):
    question, _ = ask(api, "借呗额度异常")
    first = reply_to(api, question)
    sent = api.message(PRIVATE, first.result["message_id"])
    more = next(b["callback_data"] for b in buttons(first) if b["text"] == "更多结果")

    press = callback_update(sent, more, USER)
    api.push(press)
    api.wait_for("answerCallbackQuery", lambda c: _answers(c, press))
    second = api.wait_for("sendMessage", lambda c: _replies_to(c, question) and c is not first)
    assert second.params["text"] != first.params["text"] and "来源：" in second.params["text"]
    assert buttons(second)[0]["callback_data"] != buttons(first)[0]["callback_data"]

    thumbs_up = callback_update(sent, buttons(first)[0]["callback_data"], USER)
    api.push(thumbs_up)
    thanks = api.wait_for("answerCallbackQuery", lambda c: _answers(c, thumbs_up))
    assert thanks.params["text"] == "谢谢反馈！"

    orphan = {k: v for k, v in sent.items() if k != "reply_to_message"}  # the question was deleted
    for data in (more, "v0:something-older"):
        old = callback_update(orphan, data, USER)
        api.push(old)
        polite = api.wait_for("answerCallbackQuery", lambda c: _answers(c, old))
        assert "重新提问" in polite.params["text"]


def test_an_edited_question_does_not_get_a_second_answer(api, bot):
    question, _ = ask(api, "借呗分期还完了为什么没有额度")
    reply_to(api, question)
    api.push({"edited_message": {**question, "text": "借呗分期还完了为什么没有可用额度", "edit_date": int(time.time())}})
    settle(api)
    assert len(api.calls_to("sendMessage", lambda c: _replies_to(c, question))) == 1


def test_an_over_long_question_is_answered_on_its_start_with_a_note(api, bot):
    question, _ = ask(api, "借呗升级失败怎么办" + "啊" * 3000)
    text = reply_to(api, question).params["text"]
    assert "只按前 1000 个字" in text and "来源：000_364e853100879686.txt" in text


def test_in_a_group_only_messages_addressed_to_the_bot_are_answered(api, bot):
    chatter, _ = ask(api, "借呗额度异常怎么办", chat_id=GROUP)
    other_bot, _ = ask(api, "/ask@some_other_bot 借呗额度异常怎么办", chat_id=GROUP)
    mention, _ = ask(api, "@faq_test_bot 借呗额度异常怎么办", chat_id=GROUP)
    answer = reply_to(api, mention)
    assert "来源：001_23e2b886be6030dc.txt" in answer.params["text"]

    follow_up, _ = ask(api, "那分期还完了为什么没有额度", chat_id=GROUP,
                       reply_to=api.message(GROUP, answer.result["message_id"]))
    assert "来源：003_e93a62a378bb2d47.txt" in reply_to(api, follow_up).params["text"]
    command, _ = ask(api, "/ask@faq_test_bot 借呗升级失败怎么办", chat_id=GROUP)
    assert "来源：000_364e853100879686.txt" in reply_to(api, command).params["text"]
    sticker, _ = ask(api, None, chat_id=GROUP, **STICKER)

    settle(api)
    for ignored in (chatter, other_bot, sticker):
        assert not api.calls_to("sendMessage", lambda c: _replies_to(c, ignored))


def test_a_429_with_retry_after_and_a_502_are_retried_until_delivered(api, bot):
    api.fail_next("sendMessage", 429, retry_after=1)
    question, _ = ask(api, "借呗升级失败怎么办")
    delivered = reply_to(api, question)
    refused = api.wait_for("sendMessage", lambda c: _replies_to(c, question), status=429)
    assert delivered.time - refused.time >= 1.0

    api.fail_next("sendMessage", 502)
    question, _ = ask(api, "借呗额度异常")
    delivered = reply_to(api, question)
    failed = api.wait_for("sendMessage", lambda c: _replies_to(c, question), status=502)
    assert failed.time < delivered.time and "来源：" in delivered.params["text"]


def test_a_failure_is_logged_and_the_user_told(api, bot):
    api.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    question, _ = ask(api, "借呗升级失败怎么办")
    api.wait_for("sendMessage", lambda c: c.params["chat_id"] == PRIVATE and "出了点问题" in c.params["text"])
    assert "failed: BadRequest" in bot.output()


def test_it_stops_cleanly_on_sigterm_and_never_prints_the_token_or_who_asked(api, bot, faq):
    assert bot.stop() == 0
    output = bot.output()
    assert f"@faq_test_bot serving {len(faq.knowledge.passages)} passages" in output
    assert "feedback up passage=" in output and "stopped" in output
    for secret in (TOKEN, TOKEN.split(":")[1], "HTTP Request", str(PRIVATE), str(GROUP), str(USER), "测试用户"):
        assert secret not in output


def test_a_missing_or_malformed_token_is_one_line_and_exit_code_2():
    for token in ("", "not-a-token", "12345:too_short"):
        result = run_faqbot("telegram", env={"TELEGRAM_BOT_TOKEN": token}, timeout=60)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "TELEGRAM_BOT_TOKEN" in result.stderr
        assert not token or token not in result.stderr


def test_a_token_telegram_refuses_is_exit_code_2_without_the_token(api, tmp_path):
    refused = f"42:{secrets.token_urlsafe(27)}"
    process = BotProcess(tmp_path, refused, api.base_url)
    try:
        assert process.process.wait(60) == 2
    finally:
        process.stop()
    output = process.output()
    assert "refused the token" in output and refused not in output and refused.split(":")[1] not in output
