"""What Telegram receives, checked with Telegram's own HTML rules: every passage escaped, long
answers split at paragraphs into valid messages under 4,096 characters, buttons under 64 bytes,
questions found in group messages, logs that never show the token; and the settings the bot
refuses to start with."""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import replace

import pytest
from telegram import Message

from bot.decision import Outcome
from bot.reply import render_html, split_message, view
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut

from bot.telegram import (CALLBACK_DATA_LIMIT, PRESSES, Press, RedactingFormatter, Webhook, addressed_to_bot,
                          admin_ids, button_passages, expects_reply, keyboard, parse_button, passage_data, passage_key,
                          question_of, send_rate, token_problem, transient, webhook_from)
from fake_bot_api import telegram_html_text, utf16_len

BOT_ID, USERNAME = 4242, "faq_test_bot"
NASTY = '<script>alert("x")</script> & <b>粗体</b> &amp; 5 < 6 > 4 \'引号\''


def as_telegram_shows(chunks: list[str]) -> list[str]:
    shown = [telegram_html_text(chunk) for chunk in chunks]  # raises where Telegram would answer 400
    assert all(utf16_len(text) <= 4096 for text in shown)
    return shown


def answer_with(faq, *answers: str):
    """A real answer whose passages say ``answers`` instead."""
    answer = faq.ask("借呗升级失败怎么办", top_k=3)
    hit = answer.hits[0]
    hits = tuple(replace(hit, passage=replace(hit.passage, answer=text)) for text in answers)
    return replace(answer, hits=hits)


def test_every_passage_renders_as_one_valid_telegram_message(faq):
    for passage in faq.knowledge.passages:
        answer = faq.ask(passage.question)
        [shown] = as_telegram_shows(split_message(render_html(answer)))
        assert faq.messages.disclaimer_short in shown


def test_passage_text_is_shown_literally_never_as_markup(faq):
    [shown] = as_telegram_shows(split_message(render_html(answer_with(faq, NASTY))))
    assert NASTY in shown


def test_a_refusal_is_valid_html_with_its_reason_and_the_disclaimer(faq):
    [shown] = as_telegram_shows(split_message(render_html(faq.ask("今天天气怎么样"))))
    assert view(faq.ask("今天天气怎么样")).reason in shown and faq.messages.disclaimer_short in shown


def test_a_long_full_text_is_split_at_paragraphs_into_valid_messages(faq):
    paragraphs = [f"第{i}段：" + "借呗额度异常 & <账单> " * 40 for i in range(30)]
    answer = answer_with(faq, "\n".join(paragraphs) + "\n\n" + NASTY * 200 + "\n\n短的一段。")
    chunks = split_message(render_html(answer, full=True))
    shown = as_telegram_shows(chunks)
    assert len(chunks) > 2
    assert faq.messages.disclaimer_short in shown[-1]
    assert all(chunk.startswith("<b>") or not chunk.startswith("<") for chunk in chunks)
    assert "".join(shown).replace("\n", "") == telegram_html_text(render_html(answer, full=True)).replace("\n", "")


def test_split_leaves_a_short_message_alone_and_cuts_under_any_limit():
    assert split_message("<b>一</b>\n\n二") == ["<b>一</b>\n\n二"]
    text = "\n\n".join(f"<i>{n}</i> " + "&amp;" * 50 for n in range(20))
    chunks = split_message(text, limit=300)
    assert all(len(chunk) <= 300 for chunk in chunks) and as_telegram_shows(chunks)


def every_button(keyboard) -> list:
    return [button for row in keyboard.inline_keyboard for button in row]


def test_button_data_stays_under_64_bytes_for_every_passage_and_every_kind_of_answer(faq):
    questions = [p.question for p in faq.knowledge.passages] + ["借呗", "借呗额度", "今天天气怎么样", "花呗怎么还"]
    kinds = set()
    for question in questions:
        answer = faq.ask(question)
        kinds.add(view(answer).kind)
        assert all(len(b.callback_data.encode("utf-8")) <= CALLBACK_DATA_LIMIT for b in every_button(keyboard(answer)))
    assert kinds == set(Outcome)
    long_id = "一个很长的精选问答文件名" * 4 + "#0123456789"
    assert all(len(passage_data(action, long_id).encode("utf-8")) <= CALLBACK_DATA_LIMIT
               for action in ("fb:+", "fb:-", "full", "rel", "pick"))


def test_an_answers_keyboard_is_full_text_related_questions_then_the_votes(faq):
    answer = faq.ask("借呗升级失败怎么办")
    shown = view(answer)
    rows = keyboard(answer).inline_keyboard
    assert shown.more and rows[0][0].text == "展开全文" and rows[0][0].callback_data == f"full:{shown.passage}"
    assert [row[0].text for row in rows[1:-1]] == [c.label for c in shown.related]
    assert [b.text for b in rows[-1]] == ["👍", "👎"]


def test_every_button_the_bot_writes_reads_back_as_what_it_stands_for(faq):
    passages, examples = button_passages(faq), len(faq.messages.examples)
    for question in ["借呗升级失败怎么办", "借呗", "今天天气怎么样"]:
        answer = faq.ask(question)
        for button in every_button(keyboard(answer)):
            press = parse_button(button.callback_data, passages, examples)
            assert press is not None and press.kind in PRESSES, button.callback_data
    best = faq.ask("借呗升级失败怎么办").hits[0].passage
    assert parse_button(f"fb:-:{best.id}", passages, examples) == Press("vote", best, sign="-")
    assert parse_button(f"ex:{examples - 1}", passages, examples) == Press("example", example=examples - 1)
    long = replace(best, id="一个很长的精选问答文件名" * 4 + "#0123456789")
    hashed = passage_data("rel", long.id)
    assert parse_button(hashed, {passage_key(long.id): long}, 0) == Press("rel", long)


@pytest.mark.parametrize("data", [
    None, "", "fb", "fb:", "fb:+", "fb:+:", "fb:*:x", "fb:+:x\n2026-01-01 INFO faqbot: forged line",
    "fb:-:000_364e853100879686#0000000000", "fb:+:000_364e853100879686#", "more:3", "more:3:1", "full:",
    "rel:000_364e853100879686#0000000000", "pick:x", "pick:000_364e853100879686#b7783344f4\n", "none\n", "None",
    "should ", "ex:", "ex:99", "ex:٠", "ex:0\n", "v0:something-older", "\x00", "😀" * 16,
])
def test_button_data_the_bot_never_writes_is_refused(faq, data):
    assert parse_button(data, button_passages(faq), len(faq.messages.examples)) is None


def group_message(text: str, reply_from: int | None = None, **extra) -> Message:
    from fake_bot_api import _entities

    data = {"message_id": 7, "date": 0, "chat": {"id": -100, "type": "supergroup", "title": "群"}, "text": text,
            "entities": _entities(text), "from": {"id": 1, "is_bot": False, "first_name": "甲"}, **extra}
    if reply_from is not None:
        data["reply_to_message"] = {"message_id": 6, "date": 0, "chat": data["chat"], "text": "之前的话",
                                    "from": {"id": reply_from, "is_bot": reply_from == BOT_ID, "first_name": "乙"}}
    return Message.de_json(data, None)


@pytest.mark.parametrize("text, reply_from, addressed, question", [
    ("借呗额度异常怎么办", None, False, "借呗额度异常怎么办"),
    ("@faq_test_bot 借呗额度异常怎么办", None, True, "借呗额度异常怎么办"),
    ("请问 @FAQ_Test_Bot，借呗升级失败", None, True, "请问 借呗升级失败"),
    ("@someone_else 借呗额度异常", None, False, "@someone_else 借呗额度异常"),
    ("那账单呢", BOT_ID, True, "那账单呢"),
    ("那账单呢", 99, False, "那账单呢"),
    ("/ask@faq_test_bot 借呗升级失败怎么办", None, False, "借呗升级失败怎么办"),
    ("/ask", None, False, ""),
])
def test_a_group_message_is_for_the_bot_only_when_addressed(text, reply_from, addressed, question):
    message = group_message(text, reply_from)
    assert addressed_to_bot(message, BOT_ID, USERNAME) is addressed
    assert question_of(message, USERNAME) == question


@pytest.mark.parametrize("entity", [
    {"type": "mention", "offset": 1, "length": 14},  # starts inside 😀's surrogate pair
    {"type": "mention", "offset": 0, "length": 1},  # ends inside it
    {"type": "mention", "offset": 40, "length": 14},  # beyond the text
    {"type": "mention", "offset": 2, "length": 400},
])
def test_a_malformed_mention_entity_is_skipped_not_an_error(entity):
    message = group_message("😀@faq_test_bot 借呗额度异常", entities=[entity])
    assert addressed_to_bot(message, BOT_ID, USERNAME) is False


def test_only_a_sender_waiting_for_the_bot_hears_of_a_failure():
    class Bot:
        id, username = BOT_ID, USERNAME

    assert not expects_reply(group_message("借呗额度异常怎么办"), Bot)
    assert not expects_reply(group_message("😀@faq_test_bot 借呗", entities=[{"type": "mention", "offset": 1,
                                                                              "length": 13}]), Bot)
    assert not expects_reply(group_message("/ask@some_other_bot 借呗"), Bot)
    assert expects_reply(group_message("@faq_test_bot 借呗额度异常"), Bot)
    assert expects_reply(group_message("/ask@faq_test_bot 借呗"), Bot)
    assert expects_reply(group_message("那账单呢", reply_from=BOT_ID), Bot)


def test_a_message_of_spaces_around_a_mention_loses_the_mention_and_nothing_else():
    message = group_message(" " * 2000 + "@faq_test_bot" + " " * 2000 + "借呗额度异常")
    assert question_of(message, USERNAME) == "借呗额度异常"
    assert question_of(group_message("借呗 \t @faq_test_bot：额度 @faq_test_bot"), USERNAME) == "借呗 额度"


@pytest.mark.parametrize("token, ok", [
    ("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", True),
    ("", False), ("987654", False), ("abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", False),
    ("123456789:short", False), ("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALD saw", False),
])
def test_token_format(token, ok):
    assert (token_problem(token) is None) is ok
    assert not token or token not in (token_problem(token) or "")


def test_the_log_formatter_blanks_the_token_in_messages_and_tracebacks():
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    formatter = RedactingFormatter("%(levelname)s %(message)s", (token, token.split(":")[1]))
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{token}/getMe failed")
    except RuntimeError:
        record = logging.LogRecord("httpx", logging.ERROR, __file__, 1, "HTTP Request: %s", (f"/bot{token}/x",),
                                   sys.exc_info())
    text = formatter.format(record)
    assert token not in text and token.split(":")[1] not in text and "[token]" in text


def test_a_webhook_needs_a_full_url_and_a_secret_by_telegrams_rules():
    hook = webhook_from("https://bot.example.com/telegram/updates", None, None, "s3cret_-X")
    assert hook == Webhook("https://bot.example.com/telegram/updates", "127.0.0.1", 8443, "s3cret_-X")
    assert hook.path == "/telegram/updates"
    assert webhook_from(None, None, None, "") is None
    for url, listen, port, secret, says in [
        ("https://bot.example.com/hook", None, None, "", "needs a secret"),
        ("https://bot.example.com/hook", None, None, "秘密", "A-Z a-z 0-9 _ -"),
        ("https://bot.example.com/hook", None, None, "x" * 257, "1-256"),
        ("bot.example.com/hook", None, None, "secret", "full URL"),
        ("https://bot.example.com/hook", None, 70000, "secret", "--port"),
        (None, "0.0.0.0", None, "", "--webhook-url"),
    ]:
        with pytest.raises(ValueError, match=re.escape(says)) as refused:
            webhook_from(url, listen, port, secret)
        assert not secret or secret not in str(refused.value)


def test_administrators_are_numeric_ids_and_a_name_is_refused_without_repeating_it():
    assert admin_ids("") == frozenset()
    assert admin_ids(" 42, 7,") == {42, 7}
    with pytest.raises(ValueError, match="item 2 is not a number") as refused:
        admin_ids("42, @alice")
    assert "alice" not in str(refused.value)


def test_the_send_rate_is_telegrams_unless_told():
    assert send_rate("") == 30 and send_rate("0") == 0 and send_rate("500") == 500
    for bad in ("fast", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match="FAQBOT_SEND_RATE"):
            send_rate(bad)


@pytest.mark.parametrize("error, again", [
    (NetworkError("httpx.ConnectError: All connection attempts failed"), True), (TimedOut(), True),
    (NetworkError("Internal Server Error (500)"), True),
    (TelegramError("Invalid server response"), True),
    (BadRequest("Bad Request: chat not found"), False), (Forbidden("Forbidden: bot was blocked by the user"), False),
])
def test_failures_that_may_pass_are_tried_again_refusals_are_not(error, again):
    assert transient(error) is again
