"""One chat cannot starve the others: a per-chat limit with one polite "slow down" per burst,
answers computed off the event loop, and a stop that drops only what was not yet computed. The
real ``faqbot telegram`` process against our Bot API server; no figure here depends on the
machine's speed (the timings are in ``benchmarks/telegram_load.py``)."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from collections import Counter

import pytest

from bot.telegram import Buckets, ChatLimit, Stopping, Verdict, chat_limit, compute
from fake_bot_api import PATIENCE, BotProcess, Call, FakeBotAPI, assert_private, callback_update, new_token

TOKEN = new_token()
FLOODER, NEIGHBOUR, ADMIN = 7350600001, 7350600002, 7350600003
FLOOD = 30
SLOW_DOWN = "消息发得有点快了"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_chat_gets_five_questions_then_one_slow_down_then_silence_until_it_slows_down():
    clock = Clock()
    buckets = Buckets(ChatLimit(5, 10.0), clock)
    assert [buckets.take(1) for _ in range(8)] == [Verdict.ANSWER] * 5 + [Verdict.SLOW_DOWN] + [Verdict.DROP] * 2
    assert buckets.take(2) is Verdict.ANSWER  # another chat has its own bucket
    clock.now += 2.0  # one question's worth refilled: answered, and the burst goes on
    assert [buckets.take(1) for _ in range(3)] == [Verdict.ANSWER, Verdict.DROP, Verdict.DROP]
    clock.now += 10.0  # quiet long enough to fill up: a new burst is told again
    assert [buckets.take(1) for _ in range(7)] == [Verdict.ANSWER] * 5 + [Verdict.SLOW_DOWN, Verdict.DROP]


def test_buckets_of_quiet_chats_are_forgotten(monkeypatch):
    from bot import telegram

    monkeypatch.setattr(telegram, "FORGET_AFTER", 100)
    clock = Clock()
    buckets = Buckets(ChatLimit(5, 10.0), clock)
    for chat in range(1_000):
        buckets.take(chat)
        clock.now += 0.1
    assert len(buckets._senders) <= 201


def test_the_limit_is_five_in_ten_seconds_unless_set():
    assert chat_limit("") == ChatLimit(5, 10.0)
    assert chat_limit("20/60") == ChatLimit(20, 60.0)
    assert chat_limit("0") is None
    for bad in ("5", "five/10", "0/10", "5/0", "5/-1", "5/inf"):
        with pytest.raises(ValueError, match="FAQBOT_CHAT_LIMIT"):
            chat_limit(bad)


class Context:
    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.bot_data = {"workers": ThreadPoolExecutor(2), "stopping": Stopping(grace=0.0), "counts": Counter()}


def test_answers_are_computed_in_a_worker_thread_not_on_the_event_loop():
    context = Context()

    async def ask() -> tuple[str, str]:
        return threading.current_thread().name, await compute(context, lambda: threading.current_thread().name)

    loop_thread, worker_thread = asyncio.run(ask())
    assert worker_thread != loop_thread


def test_once_stopping_questions_not_yet_computed_are_dropped_and_counted():
    context = Context()
    assert asyncio.run(compute(context, lambda: "an answer")) == "an answer"
    context.bot_data["stopping"].begin()
    assert asyncio.run(compute(context, lambda: "an answer")) is None
    assert context.bot_data["counts"]["dropped at stop"] == 1


@pytest.fixture(scope="module")
def api():
    with FakeBotAPI(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bot(api, tmp_path_factory):
    process = BotProcess(tmp_path_factory.mktemp("bot"), TOKEN, api.base_url, FAQBOT_SEND_RATE="0",
                         FAQBOT_CHAT_LIMIT="5/3600", FAQBOT_ADMINS=str(ADMIN))  # no refill while the test runs
    yield process.wait_until_serving(api)
    process.stop()
    assert_private(process.output(), TOKEN, FLOODER, NEIGHBOUR, ADMIN)


def to_chat(api: FakeBotAPI, chat: int) -> list[Call]:
    return api.calls_to("sendMessage", lambda call: call.params["chat_id"] == chat and call.status == 200)


def test_a_flood_from_one_chat_gets_five_answers_one_slow_down_and_never_delays_another_chat(api, bot):
    flood = [api.user_message("借呗额度异常" + "？" * (n % 3), chat_id=FLOODER, user_id=FLOODER) for n in range(FLOOD)]
    for message in flood:
        api.push({"message": message})
    neighbour = api.user_message("借呗升级失败怎么办", chat_id=NEIGHBOUR, user_id=NEIGHBOUR)
    api.push({"message": neighbour})
    assert "来源：" in api.wait_for("sendMessage", lambda c: c.params["chat_id"] == NEIGHBOUR).params["text"]
    assert api.wait_until(lambda: len(to_chat(api, FLOODER)) >= 6, timeout=PATIENCE)
    stats = api.user_message("/stats", chat_id=ADMIN, user_id=ADMIN)
    api.push({"message": stats})  # after the flood in the queue: every flood message was seen by then
    text = api.wait_for("sendMessage", lambda c: c.params["chat_id"] == ADMIN).params["text"]
    sent = to_chat(api, FLOODER)
    notices = [call for call in sent if SLOW_DOWN in call.params["text"]]
    answered = [call for call in sent if "来源：" in call.params["text"]]
    assert (len(answered), len(notices), len(sent)) == (5, 1, 6)
    assert re.search(rf"未处理 {FLOOD - 5} 条", text)
    assert bot.output().count("is over its limit") == 1


def test_in_a_group_each_member_has_a_limit_of_their_own(api, bot):
    group, members = -1007350620000, range(7350620001, 7350620008)  # seven members, one question each
    for member in members:
        api.push({"message": api.user_message("@faq_test_bot 借呗升级失败怎么办", chat_id=group, user_id=member,
                                              chat_type="supergroup")})
    assert api.wait_until(lambda: len(to_chat(api, group)) >= len(members), timeout=PATIENCE)
    sent = [call.params["text"] for call in to_chat(api, group)]
    assert len(sent) == len(members) and all("来源：" in text for text in sent)


def test_pressing_buttons_never_costs_the_next_question(api, bot):
    chat = 7350630001
    api.push({"message": api.user_message("借呗升级失败怎么办", chat_id=chat, user_id=chat)})
    assert api.wait_until(lambda: len(to_chat(api, chat)) == 1, timeout=PATIENCE)
    answer = to_chat(api, chat)[0]
    vote = next(button["callback_data"] for row in answer.params["reply_markup"]["inline_keyboard"] for button in row
                if button["callback_data"].startswith("fb:+"))
    for _ in range(FLOOD // 3):  # more presses than the limit of five
        api.push(callback_update(api.message(chat, answer.result["message_id"]), vote, chat))
    for question in ("借呗额度异常", "借呗账单没生成", "借呗分期还完没额度", "借呗升级失败了"):
        api.push({"message": api.user_message(question, chat_id=chat, user_id=chat)})
    assert api.wait_until(lambda: len(to_chat(api, chat)) >= 5, timeout=PATIENCE)
    assert all(SLOW_DOWN not in call.params["text"] for call in to_chat(api, chat))


def test_a_stop_drops_only_what_was_not_computed_and_sends_every_answer_that_was(api, bot):
    chats = range(7350610001, 7350610061)
    questions = [api.user_message("借呗分期还完了为什么没有额度", chat_id=chat, user_id=chat) for chat in chats]
    for message in questions:
        api.push({"message": message})
    api.wait_for("getUpdates", lambda c: any(update.get("message", {}).get("message_id") == questions[-1]["message_id"]
                                             for update in c.result or ()))  # the bot has them all
    bot.process.send_signal(signal.SIGTERM)
    assert bot.process.wait(PATIENCE) == 0
    answered = {call.params["chat_id"] for call in api.calls_to("sendMessage", lambda c: c.status == 200)} & set(chats)
    dropped = int(re.search(r"(\d+) not yet answered at the stop", bot.output()).group(1))
    again = {update["message"]["chat"]["id"] for update in api.unconfirmed() if "message" in update} & set(chats)
    assert len(answered) + dropped + len(again) == len(questions)  # none lost without a trace

