"""The Telegram bot as a user meets it: the real ``faqbot telegram`` process, long polling a small
Bot API server of our own on 127.0.0.1 (real HTTP), which queues updates and records what the bot
sends; its administrators, its question log, and its webhook mode."""

from __future__ import annotations

import html
import json
import re
import secrets
import shutil
import signal
import socket
import stat
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.feedback import LOG_FILE, Pseudonymizer, read_log
from bot.reply import Choice, view
from conftest import KNOWLEDGE, SHARED, run_faqbot
from fake_bot_api import (PATIENCE, BotProcess, Call, FakeBotAPI, assert_private, callback_update, new_token,
                          telegram_html_text, utf16_len)

TOKEN = new_token()
PRIVATE, OTHER_PRIVATE, ADMIN_CHAT, GROUP = 73501981, 73501982, 73501983, -1007350198
USER, ADMIN = 73509001, 73509002
STICKER = {"sticker": {"file_id": "CAACAgIAAxk", "file_unique_id": "AgAD1", "type": "regular", "width": 512,
                       "height": 512, "is_animated": False, "is_video": False}}
PHOTO = {"photo": [{"file_id": "AgACAgIAAxk", "file_unique_id": "AQAD2", "width": 90, "height": 90}]}
VOICE = {"voice": {"file_id": "AwACAgIAAxk", "file_unique_id": "AgAD3", "duration": 2}}
DOCUMENT = {"document": {"file_id": "BQACAgIAAxk", "file_unique_id": "AgAD4", "file_name": "账单.pdf"}}


@pytest.fixture(scope="module")
def api():
    with FakeBotAPI(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory) -> Path:
    """A copy of the shipped knowledge folder, for the administrator to change and reload."""
    folder = tmp_path_factory.mktemp("knowledge") / "knowledge"
    shutil.copytree(KNOWLEDGE, folder)
    return folder


@pytest.fixture(scope="module")
def bot(api, knowledge, tmp_path_factory):
    process = BotProcess(tmp_path_factory.mktemp("bot"), TOKEN, api.base_url,
                         FAQBOT_ADMINS=f"{ADMIN + 1}, {ADMIN}", FAQBOT_KNOWLEDGE=str(knowledge),
                         FAQBOT_CHAT_LIMIT="0")  # these stories ask fast; test_telegram_fairness limits
    yield process.wait_until_serving(api)
    process.stop()
    assert_private(process.output(), TOKEN, PRIVATE, OTHER_PRIVATE, ADMIN_CHAT, GROUP, USER, ADMIN)


def ask(api: FakeBotAPI, text: str | None, chat_id: int = PRIVATE, user_id: int = USER,
        **kwargs) -> tuple[dict, float]:
    """A user sends a message; returns it and the moment it became available to getUpdates."""
    chat_type = "private" if chat_id > 0 else "supergroup"
    message = api.user_message(text, chat_id=chat_id, user_id=user_id, chat_type=chat_type, **kwargs)
    return message, api.push({"message": message})


def admin_says(api: FakeBotAPI, text: str) -> str:
    """An administrator writes to the bot in private; the text of its reply."""
    message, _ = ask(api, text, chat_id=ADMIN_CHAT, user_id=ADMIN)
    return reply_to(api, message).params["text"]


def reply_to(api: FakeBotAPI, message: dict, timeout: float = PATIENCE) -> Call:
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


def keyboard_of(message: dict) -> list[dict]:
    return [button for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for button in row]


def press(api: FakeBotAPI, sent: Call, text: str, user_id: int = USER) -> dict:
    """A user presses the button called ``text`` under the bot's message ``sent``, as it is now."""
    message = api.message(sent.params["chat_id"], sent.result["message_id"])
    data = next(b["callback_data"] for b in keyboard_of(message) if b["text"] in (text, f"{text} ✓"))
    update = callback_update(message, data, user_id)
    api.push(update)
    return update


def answered(api: FakeBotAPI, update: dict) -> Call:
    """The bot's answer to a button press (the note a user sees, if any)."""
    return api.wait_for("answerCallbackQuery", lambda c: _answers(c, update))


def log_entries(bot) -> list[dict]:
    return read_log(bot.log_dir / LOG_FILE)


def test_a_private_question_gets_a_short_answer_under_its_heading_with_the_articles_title(api, bot, faq):
    question, _ = ask(api, "借呗升级失败怎么办")
    call = reply_to(api, question)
    text, shown = call.params["text"], view(faq.ask("借呗升级失败怎么办"))
    assert call.params["parse_mode"] == "HTML"
    assert text.startswith(f"<b>{html.escape(shown.title)}</b>\n") and "›" not in text.splitlines()[0]
    assert "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in text and ".txt" not in text
    assert html.escape(faq.messages.disclaimer_short) in text
    assert utf16_len(telegram_html_text(text)) <= 700
    assert [b["text"] for b in buttons(call)] == ["展开全文", *(c.label for c in shown.related), "👍", "👎"]
    data = [b["callback_data"] for b in buttons(call)]
    assert data[0] == f"full:{shown.passage}" and data[-2:] == [f"fb:+:{shown.passage}", f"fb:-:{shown.passage}"]
    assert all(d.startswith("rel:") for d in data[1:-2]) and all(len(d.encode("utf-8")) <= 64 for d in data)


def test_a_press_telegram_thinks_too_old_to_answer_is_carried_out_all_the_same(api, bot):
    question, _ = ask(api, "借呗额度异常怎么办")
    first = reply_to(api, question)
    api.fail_next("answerCallbackQuery", 400, description="Bad Request: query is too old and response timeout expired "
                                                          "or query ID is invalid")
    press(api, first, "展开全文")
    api.wait_for("editMessageText", lambda c: c.params["message_id"] == first.result["message_id"])


def test_a_photo_with_a_caption_is_answered_from_the_caption(api, bot):
    screenshot, _ = ask(api, None, caption="借呗升级失败怎么办", **PHOTO)
    assert "来源：" in reply_to(api, screenshot).params["text"]


def test_the_full_text_is_edited_into_the_answer_and_its_button_goes(api, bot, faq):
    question, _ = ask(api, "借呗升级失败怎么办")
    first = reply_to(api, question)
    full = answered(api, press(api, first, "展开全文"))
    assert "text" not in full.params
    edit = api.wait_for("editMessageText", lambda c: c.params["message_id"] == first.result["message_id"])
    best = faq.ask("借呗升级失败怎么办").hits[0].passage
    assert best.answer in telegram_html_text(edit.params["text"])
    assert html.escape(faq.messages.disclaimer_short) in edit.params["text"]
    assert [b["text"] for b in keyboard_of(edit.result)] == [b["text"] for b in buttons(first)][1:]


def test_a_related_question_is_answered_in_a_new_message_with_its_own_buttons(api, bot, faq):
    question, _ = ask(api, "借呗升级失败怎么办")
    first = reply_to(api, question)
    label = view(faq.ask("借呗升级失败怎么办")).related[0].label
    answered(api, press(api, first, label))
    second = reply_to(api, first.result)
    related = next(p for p in faq.knowledge.passages if f"rel:{p.id}" == buttons(first)[1]["callback_data"])
    assert second.params["text"].startswith(f"<b>{html.escape(label)}</b>")
    assert [b["callback_data"] for b in buttons(second)][-2:] == [f"fb:+:{related.id}", f"fb:-:{related.id}"]
    assert f"rel:{related.id}" not in [b["callback_data"] for b in buttons(second)]
    assert api.wait_until(lambda: label not in [b["text"] for b in keyboard_of(
        api.message(PRIVATE, first.result["message_id"]))], timeout=PATIENCE)  # a second tap cannot repeat it


def test_a_double_tap_is_carried_out_once_and_a_button_not_on_the_message_is_expired(api, bot, faq):
    question, _ = ask(api, "借呗升级失败了怎么办呢")
    first = reply_to(api, question)
    message = api.message(PRIVATE, first.result["message_id"])  # as both taps saw it, before any edit
    related = buttons(first)[1]["callback_data"]
    taps = [callback_update(message, related, USER) for _ in range(2)]
    for tap in taps:
        api.push(tap)
    for tap in taps:
        api.wait_for("answerCallbackQuery", lambda c, tap=tap: _answers(c, tap))
    settle(api)
    assert len(api.calls_to("sendMessage", lambda c: _replies_to(c, first.result))) == 1
    forged = callback_update(message, "none", USER)  # "都不是" belongs under a clarification, not here
    api.push(forged)
    assert api.wait_for("answerCallbackQuery", lambda c: _answers(c, forged)).params["text"] == "按钮已失效，请重新提问。"


def test_a_vote_marks_the_keyboard_and_a_second_vote_replaces_the_first_in_the_log(api, bot):
    question, _ = ask(api, "借呗额度异常")
    answer = reply_to(api, question)
    down = answered(api, press(api, answer, "👎"))
    assert down.params["text"] == "谢谢反馈！"
    marked = api.wait_for("editMessageReplyMarkup", lambda c: c.params["message_id"] == answer.result["message_id"])
    assert [b["text"] for b in keyboard_of(marked.result)][-2:] == ["👍", "👎 ✓"]
    votes = [e for e in log_entries(bot) if e.get("answer") == answer.result["message_id"]]
    assert [(e["kind"], e["question"]) for e in votes] == [("downvote", "借呗额度异常")]

    answered(api, press(api, answer, "👍"))
    assert api.wait_until(lambda: [b["text"] for b in keyboard_of(api.message(PRIVATE, answer.result["message_id"]))][-2:]
                          == ["👍 ✓", "👎"], timeout=PATIENCE)
    answered(api, press(api, answer, "👍"))  # pressed again: nothing new counts
    settle(api)
    votes = [e for e in log_entries(bot) if e.get("answer") == answer.result["message_id"]]
    assert [e["kind"] for e in votes] == ["upvote"]


VAGUE = ("借呗", "借呗额度", "借呗有问题", "额度", "借呗怎么了", "借呗额度怎么了", "借呗咋回事", "借呗升级", "借呗出问题了",
         "借呗不行了")


def clarification(api: FakeBotAPI) -> tuple[str, Call]:
    """A vague question the bot answers with "您是想问：", and that reply (asked of the bot itself,
    so a recalibrated core only changes which one)."""
    for asked in VAGUE:
        question, _ = ask(api, asked)
        reply = reply_to(api, question)
        if telegram_html_text(reply.params["text"]).startswith("您是想问："):
            return asked, reply
    raise AssertionError(f"none of {VAGUE} was clarified")


def test_a_clarification_offers_its_candidates_a_tap_answers_it_and_both_choices_are_logged(api, bot, faq):
    asked, offer = clarification(api)
    passages = {p.id: p for p in faq.knowledge.passages}
    candidates = [Choice(b["callback_data"][len("pick:"):], b["text"]) for b in buttons(offer)[:-1]]
    assert buttons(offer)[-1] == {"text": "都不是", "callback_data": "none"} and 2 <= len(candidates) <= 3
    assert all(passages[c.id].heading in c.label for c in candidates)

    answered(api, press(api, offer, candidates[1].label))
    picked = reply_to(api, offer.result)
    assert picked.params["text"].startswith(f"<b>{html.escape(passages[candidates[1].id].heading)}</b>")
    assert f"fb:+:{candidates[1].id}" in [b["callback_data"] for b in buttons(picked)]

    noted = answered(api, press(api, offer, "都不是"))
    assert "记下" in noted.params["text"]
    assert api.wait_until(lambda: "都不是" not in [b["text"] for b in keyboard_of(
        api.message(PRIVATE, offer.result["message_id"]))], timeout=PATIENCE)
    mine = [(e["kind"], e["question"], e["shown"]) for e in log_entries(bot) if e["kind"] in ("clarify_pick", "none_of_these")]
    assert mine[-2:] == [("clarify_pick", asked, [candidates[1].id]), ("none_of_these", asked, [c.id for c in candidates])]


def test_a_refusal_says_why_offers_examples_and_a_button_that_logs_the_question(api, bot, faq):
    question, _ = ask(api, "今天天气怎么样")
    refusal = reply_to(api, question)
    shown = view(faq.ask("今天天气怎么样"))
    assert shown.reason in telegram_html_text(refusal.params["text"]) and "笼统" not in refusal.params["text"]
    assert [b["text"] for b in buttons(refusal)] == [*faq.messages.examples, "这个问题应该能回答"]

    answered(api, press(api, refusal, faq.messages.examples[0]))
    assert "来源：" in reply_to(api, refusal.result).params["text"]
    answered(api, press(api, refusal, "这个问题应该能回答"))
    assert api.wait_until(lambda: len(keyboard_of(api.message(PRIVATE, refusal.result["message_id"])))
                          == len(faq.messages.examples), timeout=PATIENCE)
    assert [(e["kind"], e["question"]) for e in log_entries(bot)][-2:] == [("refused", "今天天气怎么样"),
                                                                          ("should_answer", "今天天气怎么样")]


def test_in_a_group_the_answer_replies_to_the_asker_and_its_buttons_work_for_anyone(api, bot, faq):
    question, _ = ask(api, "@faq_test_bot 借呗升级失败怎么办", chat_id=GROUP)
    answer = reply_to(api, question)
    assert answer.params["chat_id"] == GROUP and "来源：" in answer.params["text"]
    label = view(faq.ask("借呗升级失败怎么办")).related[0].label
    answered(api, press(api, answer, label, user_id=ADMIN))
    assert reply_to(api, answer.result).params["chat_id"] == GROUP
    for voter in (USER, ADMIN):
        answered(api, press(api, answer, "👎", user_id=voter))
    assert api.wait_until(lambda: len([e for e in log_entries(bot) if e.get("answer") == answer.result["message_id"]])
                          == 2, timeout=PATIENCE)
    votes = [e for e in log_entries(bot) if e.get("answer") == answer.result["message_id"]]
    assert len({e["voter"] for e in votes}) == 2 and {e["chat"] for e in votes} == {Pseudonymizer(
        (bot.log_dir / "salt").read_bytes())(GROUP)}


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
    assert "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in answer.params["text"]


def test_help_and_about(api, bot, faq):
    help_message, _ = ask(api, "/help")
    assert "/ask" in reply_to(api, help_message).params["text"]
    about, _ = ask(api, "/about")
    text = html.unescape(reply_to(api, about).params["text"])
    assert faq.messages.disclaimer in text and "000_364e853100879686.txt" in text


@pytest.mark.parametrize("content", [STICKER, PHOTO, VOICE, DOCUMENT], ids=["sticker", "photo", "voice", "file"])
def test_a_sticker_photo_voice_note_or_file_is_asked_to_come_as_text(api, bot, content):
    message, _ = ask(api, None, **content)
    text = reply_to(api, message).params["text"]
    assert "文字" in text and "仅供参考" in text  # the disclaimer, as under every answer


FORGED = ["", "fb:+:x\n2026-01-01 00:00:00 INFO faqbot.telegram: forged-line", "fb:-:forged#0123456789",
          "fb:+:", "rel:forged#0123456789", "pick:x\n", "full:٣", "none\n", "ex:99", "more:3", "v0:something-older"]


def test_a_forged_empty_or_unknown_button_gets_a_quiet_expired_note_and_nothing_is_logged(api, bot):
    question, _ = ask(api, "借呗额度异常")
    answer = api.message(PRIVATE, reply_to(api, question).result["message_id"])
    log = bot.log_dir / LOG_FILE
    logged, before = (log.read_text(encoding="utf-8") if log.exists() else ""), len(bot.output())
    presses = [callback_update(answer, data, USER) for data in FORGED]
    no_data = callback_update(answer, "", USER)
    del no_data["callback_query"]["data"]  # neither data nor a game: Telegram's "empty" press
    for press in [*presses, no_data]:
        api.push(press)
        note = api.wait_for("answerCallbackQuery", lambda c, press=press: _answers(c, press))
        assert note.params["text"] == "按钮已失效，请重新提问。"
    settle(api)
    assert len(api.calls_to("sendMessage", lambda c: _replies_to(c, question))) == 1
    assert (log.read_text(encoding="utf-8") if log.exists() else "") == logged
    output = bot.output()[before:]
    assert "forged" not in output and "Traceback" not in output and "failed" not in output


def test_a_mention_that_splits_a_character_in_a_group_gets_no_reply_and_no_error(api, bot):
    message = api.user_message("😀@faq_test_bot 借呗额度异常", chat_id=GROUP, user_id=USER, chat_type="supergroup")
    message["entities"] = [{"type": "mention", "offset": 1, "length": 14}]  # a client's bad offsets
    before = len(bot.output())
    api.push({"message": message})
    settle(api)
    assert not api.calls_to("sendMessage", lambda c: c.params.get("chat_id") == GROUP and "出了点问题" in c.params["text"])
    assert not api.calls_to("sendMessage", lambda c: _replies_to(c, message))
    assert "UnicodeDecodeError" not in bot.output()[before:] and "failed" not in bot.output()[before:]


def test_an_edited_question_does_not_get_a_second_answer(api, bot):
    question, _ = ask(api, "借呗分期还完了为什么没有额度")
    reply_to(api, question)
    api.push({"edited_message": {**question, "text": "借呗分期还完了为什么没有可用额度", "edit_date": int(time.time())}})
    settle(api)
    assert len(api.calls_to("sendMessage", lambda c: _replies_to(c, question))) == 1


def test_an_over_long_question_is_answered_on_its_start_with_a_note(api, bot):
    question, _ = ask(api, "借呗升级失败怎么办" + "啊" * 3000)
    text = reply_to(api, question).params["text"]
    assert "只按前 1000 个字" in text and "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in text


def test_a_question_that_composition_multiplies_gets_an_answer_and_the_bot_lives_on(api, bot):
    question, _ = ask(api, "\ufdfa" * 1000)  # ﷺ: one character, eighteen once composed (NFKC)
    assert reply_to(api, question).params["text"]
    after, _ = ask(api, "借呗升级失败怎么办")
    assert "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in reply_to(api, after).params["text"]
    assert bot.process.poll() is None


def test_in_a_group_only_messages_addressed_to_the_bot_are_answered(api, bot):
    chatter, _ = ask(api, "借呗额度异常怎么办", chat_id=GROUP)
    other_bot, _ = ask(api, "/ask@some_other_bot 借呗额度异常怎么办", chat_id=GROUP)
    mention, _ = ask(api, "@faq_test_bot 借呗额度异常怎么办", chat_id=GROUP)
    answer = reply_to(api, mention)
    assert "来源：借呗额度异常:项目融资与企业贷款中的账单管理挑战" in answer.params["text"]

    follow_up, _ = ask(api, "那分期还完了为什么没有额度", chat_id=GROUP,
                       reply_to=api.message(GROUP, answer.result["message_id"]))
    assert "来源：北京中鼎经纬实业发展有限公司借呗分期还本后无额度可用的原因与解决方案" in reply_to(api, follow_up).params["text"]
    command, _ = ask(api, "/ask@faq_test_bot 借呗升级失败怎么办", chat_id=GROUP)
    assert "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in reply_to(api, command).params["text"]
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


def test_refused_questions_and_thumbs_down_go_to_the_question_log_under_a_salted_hash(api, bot):
    refused = ["花呗怎么开通", "花呗如何开通", "怎么开通花呗呢", "今天天气怎么样"]
    for text in refused:
        question, _ = ask(api, text, chat_id=OTHER_PRIVATE)
        reply_to(api, question)
    question, _ = ask(api, "你好", chat_id=OTHER_PRIVATE)  # refused too, but nothing was asked: not logged
    reply_to(api, question)
    question, _ = ask(api, "借呗额度异常")
    answer = reply_to(api, question)
    answered(api, press(api, answer, "👎"))
    best = next(b["callback_data"] for b in buttons(answer) if b["text"] == "👎")[len("fb:-:"):]

    salt = bot.log_dir / "salt"
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    hashed = Pseudonymizer(salt.read_bytes())
    log = bot.log_dir / LOG_FILE
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(e["kind"], e["question"], e["chat"], e["shown"]) for e in entries[-5:]] == [
        *(("refused", text, hashed(OTHER_PRIVATE), []) for text in refused),
        ("downvote", "借呗额度异常", hashed(PRIVATE), [best])]
    assert entries[-5]["best_score"] > 0 and entries[-1]["best_score"] is None
    assert_private(log.read_text(encoding="utf-8"), TOKEN, PRIVATE, OTHER_PRIVATE, USER)

    report = run_faqbot("report", "--log", str(log))
    assert report.returncode == 0
    huabei = next(line for line in report.stdout.splitlines()[1:] if line.split()[-1] in refused[:3])
    assert huabei.split()[:2] == ["3", "3"]


def test_a_question_log_that_cannot_be_written_never_stops_an_answer(api, bot, faq):
    log = bot.log_dir / LOG_FILE
    kept = log.rename(log.with_suffix(".kept"))
    log.mkdir()  # appending to a folder fails, whoever the bot runs as
    try:
        question, _ = ask(api, "花呗怎么还款", chat_id=OTHER_PRIVATE)
        assert faq.messages.examples_heading in reply_to(api, question).params["text"]
    finally:
        log.rmdir()
        kept.rename(log)
    assert "could not write the question log" in bot.output()


def test_administrator_commands_answer_only_administrators(api, bot):
    for command in ("/reload", "/stats"):
        private, _ = ask(api, command)
        assert "没有这个命令" in reply_to(api, private).params["text"]
        in_group, _ = ask(api, f"{command}@faq_test_bot", chat_id=GROUP)  # named: as in private
        assert "没有这个命令" in reply_to(api, in_group).params["text"]
        bare, _ = ask(api, command, chat_id=GROUP)  # perhaps another bot's: silence
        settle(api)
        assert not api.calls_to("sendMessage", lambda c: _replies_to(c, bare))
    stats = admin_says(api, "/stats")
    assert "资料：3 篇，共" in stats and re.search(r"启动以来：回答 [1-9]\d* 个问题，未能回答 [1-9]\d* 个", stats)


def test_an_administrator_reloads_the_knowledge_and_a_failed_reload_keeps_the_old(api, bot, knowledge):
    new_file = knowledge / "zz_mascot.jsonl"
    new_file.write_text(json.dumps({"question": "借呗的吉祥物叫什么名字", "answer": "借呗的吉祥物是一只叫呗呗的小熊猫。"},
                                   ensure_ascii=False) + "\n", encoding="utf-8")
    assert "已重新载入资料：4 篇资料" in admin_says(api, "/reload")
    assert "叫呗呗的小熊猫" in admin_says(api, "借呗的吉祥物叫什么名字")

    (knowledge / "zz_broken.txt").write_bytes(b"")
    failed = html.unescape(admin_says(api, "/reload"))
    assert "重新载入失败" in failed and "zz_broken.txt: empty file" in failed and len(failed.splitlines()) == 1
    assert "叫呗呗的小熊猫" in admin_says(api, "借呗的吉祥物叫什么名字")

    (knowledge / "zz_broken.txt").unlink()
    new_file.unlink()
    bot.process.send_signal(signal.SIGHUP)
    assert api.wait_until(lambda: bot.output().count("reloaded:") == 2, timeout=PATIENCE)
    assert "叫呗呗的小熊猫" not in admin_says(api, "借呗的吉祥物叫什么名字")
    assert "reload failed, still serving the previous knowledge: zz_broken.txt: empty file" in bot.output()


def test_old_buttons_still_work_after_a_restart(tmp_path, faq):
    """Buttons carry passage ids, not in-memory state: a new process answers the old ones."""
    token = new_token()
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    with FakeBotAPI(token) as server:
        before = BotProcess(tmp_path / "before", token, server.base_url, FAQBOT_CHAT_LIMIT="0").wait_until_serving(server)
        try:
            question, _ = ask(server, "借呗升级失败怎么办")
            old = reply_to(server, question)
        finally:
            assert before.stop() == 0
        after = BotProcess(tmp_path / "after", token, server.base_url, FAQBOT_CHAT_LIMIT="0").wait_until_serving(server)
        try:
            label = view(faq.ask("借呗升级失败怎么办")).related[0].label
            answered(server, press(server, old, label))
            assert "来源：" in reply_to(server, old.result).params["text"]
            answered(server, press(server, old, "展开全文"))
            server.wait_for("editMessageText", lambda c: c.params["message_id"] == old.result["message_id"])
            answered(server, press(server, old, "👎"))
            assert server.wait_until(lambda: [e["kind"] for e in log_entries(after)] == ["downvote"], timeout=PATIENCE)
        finally:
            assert after.stop() == 0
        assert "Traceback" not in before.output() + after.output()


DEV_SET = SHARED / "eval" / "dev.jsonl"


def test_the_first_message_of_an_answer_fits_a_phone_screen_over_the_dev_set(api, bot):
    """Median ≤ 450 and at most 700 characters as Telegram counts them, disclaimer included, over
    the dev set's answerable questions."""
    if not DEV_SET.is_file():
        pytest.skip(f"no dev set at {DEV_SET}")
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    lengths = []
    for row in (row for row in rows if row["expect"]):
        question, _ = ask(api, row["question"])
        lengths.append(utf16_len(telegram_html_text(reply_to(api, question).params["text"])))
    print(f"first message over {len(lengths)} dev questions: median {statistics.median(lengths):.0f}, "
          f"max {max(lengths)} characters")
    assert statistics.median(lengths) <= 450 and max(lengths) <= 700


def test_it_stops_cleanly_on_sigterm_and_never_prints_the_token_or_who_asked(api, bot, faq):
    assert bot.stop() == 0
    output = bot.output()
    assert f"@faq_test_bot serving {len(faq.knowledge.passages)} passages" in output
    assert "feedback up passage=" in output and "stopped" in output
    assert_private(output, TOKEN, PRIVATE, OTHER_PRIVATE, ADMIN_CHAT, GROUP, USER, ADMIN)


def test_a_missing_or_malformed_token_is_one_line_and_exit_code_2():
    for token in ("", "not-a-token", "12345:too_short"):
        result = run_faqbot("telegram", env={"TELEGRAM_BOT_TOKEN": token}, timeout=PATIENCE)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "TELEGRAM_BOT_TOKEN" in result.stderr
        assert not token or token not in result.stderr


def test_a_token_telegram_refuses_is_exit_code_2_without_the_token(api, tmp_path):
    refused = f"42:{secrets.token_urlsafe(27)}"
    process = BotProcess(tmp_path, refused, api.base_url)
    try:
        assert process.process.wait(PATIENCE) == 2
    finally:
        process.stop()
    assert "refused the token" in process.output()
    assert_private(process.output(), refused)


def test_webhook_mode_takes_an_update_only_with_the_secret_header(tmp_path):
    token, secret, port = new_token(), secrets.token_urlsafe(32), free_port()
    url = f"http://127.0.0.1:{port}/telegram/updates"
    with FakeBotAPI(token) as api:
        process = BotProcess(tmp_path, token, api.base_url, "--webhook-url", url, "--listen", "127.0.0.1",
                             "--port", str(port), FAQBOT_WEBHOOK_SECRET=secret)
        try:
            process.wait_until_serving(api, listening_with="setWebhook")
            assert api.webhook["url"] == url and api.webhook["secret_token"] == secret
            questions = [api.user_message(text, chat_id=PRIVATE, user_id=USER)
                         for text in ("借呗额度异常", "借呗分期还完了为什么没有额度", "借呗升级失败怎么办")]
            statuses = [post_update(url, {"update_id": n, "message": message}, header)
                        for n, (message, header) in enumerate(zip(questions, (None, "wrong-secret", secret)), start=1)]
            assert statuses == [403, 403, 200]
            assert "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in reply_to(api, questions[2]).params["text"]
            assert not api.calls_to("sendMessage", lambda c: _replies_to(c, questions[0]) or _replies_to(c, questions[1]))
            assert not api.calls_to("getUpdates")
        finally:
            code = process.stop()
    assert code == 0
    output = process.output()
    assert f"listening for Telegram's webhook calls on 127.0.0.1:{port}/telegram/updates" in output
    assert_private(output, token, PRIVATE, USER)
    assert secret not in output


def test_webhook_mode_without_a_valid_secret_is_one_line_and_exit_code_2():
    for secret in ("", "has spaces", "x" * 257):
        result = run_faqbot("telegram", "--webhook-url", "https://bot.example.com/telegram", timeout=PATIENCE,
                            env={"TELEGRAM_BOT_TOKEN": TOKEN, "FAQBOT_WEBHOOK_SECRET": secret})
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "FAQBOT_WEBHOOK_SECRET" in result.stderr
        assert not secret or secret not in result.stderr
        assert_private(result.stdout + result.stderr, TOKEN)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_update(url: str, update: dict, secret: str | None, timeout: float = PATIENCE) -> int:
    """Telegram's side of a webhook: POST the update (with ``secret`` in the header, if any), once
    the bot listens; the HTTP status it answered."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(url, json.dumps(update).encode("utf-8"), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=PATIENCE) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # setWebhook comes before the server listens
