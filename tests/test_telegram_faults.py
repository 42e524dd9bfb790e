"""The bot when the Bot API misbehaves: the real ``faqbot telegram`` process against our Bot API
server, which times out, refuses connections for 10 s, answers 500 or 429 "retry after", or sends
cut-off JSON, on getUpdates and on sendMessage alike. However it misbehaves, once it is back every
question that arrived gets exactly one answer: none lost, none twice. Then many chats asking at
once: every question answered exactly once, however long the machine takes (throughput and
latency are figures of ``benchmarks/telegram_load.py``, not assertions here).

A failed call is never carried out by the server (see ``fake_bot_api``), so a retry is always
right here; the counts are printed (``pytest -s`` shows them). Every deadline is generous: a test
waits for what must happen, it never times how fast it happens."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from bot.feedback import LOG_FILE
from fake_bot_api import (MALFORMED, OFFLINE, PATIENCE, TIMEOUT, BotProcess, FakeBotAPI, assert_private,
                          new_token)

TOKEN = new_token()
FAULT_CHATS = range(7350300001, 7350300006)  # five private chats (a private chat's id is its user's)
LOAD_CHATS = range(7350400001, 7350400021)  # twenty
QUESTIONS = ["借呗升级失败怎么办", "借呗额度异常", "借呗分期还完了为什么没有额度", "借呗账单没有生成是什么原因",
             "花呗怎么开通", "今天天气怎么样"]  # four answered, two refused (and logged)
POLL_HOLD = 16.0  # s: beyond python-telegram-bot's wait for getUpdates (10 s long poll + 5 s read time-out)
SEND_HOLD = 6.0  # s: beyond its 5 s read time-out for sendMessage
OUTAGE = 10.0  # s of connection refused
GRACE = 2.0  # s to wait after the last first answer, for a duplicate to show up
LOAD_QUESTIONS = 5  # per chat, all queued at once


@pytest.fixture(scope="module")
def api():
    with FakeBotAPI(TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def bot(api, tmp_path_factory):
    process = BotProcess(tmp_path_factory.mktemp("bot"), TOKEN, api.base_url, FAQBOT_SEND_RATE="0",
                         FAQBOT_CHAT_LIMIT="0")
    yield process.wait_until_serving(api)
    assert process.stop() == 0
    assert_private(process.output(), TOKEN, *FAULT_CHATS, *LOAD_CHATS)
    log = process.log_dir / LOG_FILE
    assert_private(log.read_text(encoding="utf-8"), TOKEN, *FAULT_CHATS, *LOAD_CHATS)


@pytest.fixture(scope="module")
def tally():
    """One row per fault test: what was injected and what became of the questions."""
    rows: list[tuple[str, str, int, int, int, int]] = []
    yield rows
    header = f"{'faults':<34} {'injected':<46} {'queued':>6} {'answered':>8} {'lost':>4} {'duplicated':>10}"
    lines = [header, *(f"{kind:<34} {faults:<46} {queued:>6} {answered:>8} {lost:>4} {duplicated:>10}"
                       for kind, faults, queued, answered, lost, duplicated in rows)]
    totals = [sum(row[n] for row in rows) for n in range(2, 6)]
    lines.append(f"{'total':<34} {'':<46} {totals[0]:>6} {totals[1]:>8} {totals[2]:>4} {totals[3]:>10}")
    print("\n" + "\n".join(lines))


def ask_many(api: FakeBotAPI, count: int) -> list[dict]:
    """``count`` questions from the five fault-test chats in turn, queued for the bot at once."""
    messages = []
    for n in range(count):
        chat = FAULT_CHATS[n % len(FAULT_CHATS)]
        messages.append(api.user_message(QUESTIONS[n % len(QUESTIONS)], chat_id=chat, user_id=chat))
        api.push({"message": messages[-1]})
    return messages


def replies(api: FakeBotAPI) -> Counter:
    """Messages the server carried out, by (chat, the message they reply to, text)."""
    return Counter((call.params["chat_id"], (call.params.get("reply_parameters") or {}).get("message_id"),
                    call.params["text"]) for call in api.calls_to("sendMessage", lambda call: call.status == 200))


def answers(api: FakeBotAPI, questions: list[dict], timeout: float) -> tuple[int, int, int]:
    """Once every question has a reply (or ``timeout`` is up) and a duplicate had time to show:
    how many were answered, lost (no reply), duplicated (the same reply again)."""
    keys = {(question["chat"]["id"], question["message_id"]) for question in questions}
    api.wait_until(lambda: keys <= {(chat, reply) for chat, reply, _ in replies(api)}, timeout, poll=0.5)
    time.sleep(GRACE)
    sent = {key: count for key, count in replies(api).items() if key[:2] in keys}
    answered = len({key[:2] for key in sent})
    return answered, len(keys) - answered, sum(count - 1 for count in sent.values())


def check(api: FakeBotAPI, tally: list, kind: str, injected_before: Counter, questions: list[dict],
          timeout: float, note: str = "") -> None:
    """Every question answered exactly once; the row for the report."""
    answered, lost, duplicated = answers(api, questions, timeout)
    injected = api.injected - injected_before
    faults = ", ".join([*(f"{method} {fault}×{count}" for (method, fault), count in sorted(injected.items(), key=str)),
                        *filter(None, [note])])
    tally.append((kind, faults, len(questions), answered, lost, duplicated))
    assert (answered, lost, duplicated) == (len(questions), 0, 0)
    assert injected, "no fault was injected"


def test_time_outs_on_getupdates_and_sendmessage(api, bot, tally):
    before, since = api.injected.copy(), time.monotonic()
    api.fail_next("sendMessage", TIMEOUT, times=2, hold=SEND_HOLD)
    first = ask_many(api, 4)  # two of their replies are held until the bot gives up on them
    api.wait_for("sendMessage", lambda call: call.time >= since, status=TIMEOUT)
    api.fail_next("getUpdates", TIMEOUT, hold=POLL_HOLD)
    api.wait_for("getUpdates", lambda call: call.time >= since, status=TIMEOUT)
    second = ask_many(api, 4)  # queued while the bot waits for updates that never come
    check(api, tally, "time-outs", before, first + second, timeout=POLL_HOLD + PATIENCE)
    assert "TimedOut" in bot.output()


def test_connection_refused_for_ten_seconds_then_back_on_the_same_port(api, bot, tally):
    before, address, refusals_before = api.injected.copy(), api.base_url, bot.output().count("ConnectError")
    api.fail_next("sendMessage", OFFLINE, hold=OUTAGE)
    first = ask_many(api, 4)  # the first reply takes the server down: the others find nobody listening
    assert api.wait_until(lambda: api.offline, timeout=PATIENCE)
    second = ask_many(api, 4)  # queued while nobody listens
    settled = api.wait_until(lambda: bool(api.outages), timeout=OUTAGE + PATIENCE)
    refusals = bot.output().count("ConnectError") - refusals_before  # the bot's own count: one warning each
    check(api, tally, f"connection refused {OUTAGE:.0f} s", before, first + second, timeout=OUTAGE + PATIENCE,
          note=f"{refusals} connections refused")
    began, ended = api.outages[-1]
    assert settled and ended - began >= OUTAGE and api.base_url == address and refusals > 0


@pytest.mark.parametrize("fault", [500, 429, MALFORMED], ids=["http-500", "http-429-retry-after", "malformed-json"])
def test_errors_on_getupdates_and_sendmessage(api, bot, tally, fault):
    before, since = api.injected.copy(), time.monotonic()
    api.fail_next("getUpdates", fault, times=2, retry_after=1)
    api.fail_next("sendMessage", fault, times=3, retry_after=1)
    api.wait_for("getUpdates", lambda call: call.time >= since, status=fault)
    questions = ask_many(api, 6)  # queued while getUpdates fails
    kind = {500: "HTTP 500", 429: "HTTP 429, retry_after 1 s", MALFORMED: "malformed JSON (200, cut off)"}[fault]
    check(api, tally, kind, before, questions, timeout=PATIENCE)


def test_every_question_from_twenty_chats_asking_at_once_is_answered_exactly_once(api, bot):
    questions = []
    for n in range(LOAD_QUESTIONS * len(LOAD_CHATS)):
        chat = LOAD_CHATS[n % len(LOAD_CHATS)]
        questions.append(api.user_message(QUESTIONS[n % len(QUESTIONS)], chat_id=chat, user_id=chat))
        api.push({"message": questions[-1]})
    answered, lost, duplicated = answers(api, questions, timeout=5 * PATIENCE)
    assert (answered, lost, duplicated) == (len(questions), 0, 0)
