"""The Telegram bot under load: the real ``faqbot telegram`` process against the tests' Bot API
server (``tests/fake_bot_api.py``, real HTTP on 127.0.0.1). Figures, not assertions: the test suite
only checks that every question is answered exactly once, however slow the machine.

Scenarios (each in a bot process of its own; ``--only`` picks some):

- ``load``: C chats asking R questions a second each for S seconds: answered, lost, duplicated,
  throughput, update-to-reply latency. Run with the per-chat limit off (``FAQBOT_CHAT_LIMIT=0``),
  since each chat asks faster than a person. ``--questions N`` asks N real user questions of
  ``../shared/data`` in turn (seeded) instead of the tests' six, so that the encoder meets
  questions of every length.
- ``sustained``: offered rates stepping up (one chat per question a second, so no chat is limited);
  for each, the answers a second the bot kept up with, with none lost, and the latency.
- ``flood``: one chat sends N messages at once while other chats ask a question every 0.25 s;
  their wait (p50 / p90 / max) and what became of the flood, with the default per-chat
  limit and, with ``--compare``, without it.
- ``shutdown``: N questions from N chats queued, then SIGTERM as soon as the bot has fetched
  them: how long it took to stop, and how many answers went out.

    python benchmarks/telegram_load.py                 # all scenarios, about three minutes
    python benchmarks/telegram_load.py --only flood --compare
    python benchmarks/telegram_load.py --only load --chats 50 --rate 0.6 --seconds 60 --questions 2000   # 30/s
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_bot_api import BotProcess, FakeBotAPI, new_token  # noqa: E402

QUESTIONS = ["借呗升级失败怎么办", "借呗额度异常", "借呗分期还完了为什么没有额度", "借呗账单没有生成是什么原因",
             "花呗怎么开通", "今天天气怎么样"]  # four answered, two refused: the tests' mix
GRACE = 2.0  # s after the last answer, for duplicates to show up
SLOW_DOWN = "消息发得有点快了"  # the start of telegram.toml's slow_down
CHAT_BASE = 7_350_500_000


def percentile(values: list[float], percent: float) -> float:
    """Nearest rank: the value ``percent`` % of the sorted ``values`` are at or below."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]


class Session:
    """One bot process against one fake Bot API server, in a temporary folder of its own."""

    def __init__(self, **env: str) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="faqbot-load-")
        os.environ["FAQBOT_CACHE"] = str(Path(self.folder.name) / "cache")
        self.token = new_token()
        self.api = FakeBotAPI(self.token).start()
        self.bot = BotProcess(Path(self.folder.name), self.token, self.api.base_url, FAQBOT_SEND_RATE="0", **env)
        self.bot.wait_until_serving(self.api)

    def close(self) -> None:
        try:
            self.bot.stop()
        finally:
            self.api.stop()
            self.folder.cleanup()

    def ask(self, chat: int, text: str) -> tuple[tuple[int, int], float]:
        """A question from a private chat; its key (chat, message id) and when it was queued."""
        message = self.api.user_message(text, chat_id=chat, user_id=chat)
        return (chat, message["message_id"]), self.api.push({"message": message})

    def first_replies(self) -> tuple[dict[tuple[int, int], float], Counter]:
        """When each question got its first reply, and how many replies each got."""
        first: dict[tuple[int, int], float] = {}
        count: Counter = Counter()
        for call in self.api.calls_to("sendMessage", lambda call: call.status == 200):
            key = (call.params["chat_id"], (call.params.get("reply_parameters") or {}).get("message_id"))
            first.setdefault(key, call.time)
            count[key] += 1
        return first, count

    def wait_for_answers(self, keys: set, timeout: float) -> None:
        self.api.wait_until(lambda: keys <= set(self.first_replies()[0]), timeout, poll=0.25)


def real_questions(count: int, seed: int = 20240601) -> list[str]:
    """``count`` distinct real user questions (seeded), as ``bench.py`` reads them."""
    import random

    from bench import DEFAULT_DATA, real_questions as read

    found = read(DEFAULT_DATA)
    random.Random(seed).shuffle(found)
    return found[:count]


def offered(session: Session, chats: list[int], rate: float, seconds: float,
            questions: list[str] = QUESTIONS) -> dict:
    """Questions from ``chats`` in turn at ``rate`` a second for ``seconds``; the figures."""
    pushed: dict[tuple[int, int], float] = {}
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        key, at = session.ask(chats[n % len(chats)], questions[n % len(questions)])
        pushed[key] = at
    offered_for = time.monotonic() - start
    session.wait_for_answers(set(pushed), timeout=max(120.0, 4 * seconds))
    time.sleep(GRACE)
    first, count = session.first_replies()
    answered = [key for key in pushed if key in first]
    latencies = [(first[key] - pushed[key]) * 1000 for key in answered]
    took = max((first[key] for key in answered), default=start) - start
    return {"questions": len(pushed), "offered_per_s": round(len(pushed) / offered_for, 1),
            "answered": len(answered), "lost": len(pushed) - len(answered),
            "duplicated": sum(count[key] - 1 for key in answered),
            "answers_per_s": round(len(answered) / took, 1) if took else None,
            "latency_ms": {p: round(percentile(latencies, p), 1) for p in (50, 90, 99)} | {"max": round(max(latencies, default=0), 1)}}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scenario_load(chats: int, rate: float, seconds: float, questions: list[str]) -> dict:
    """Also the bot's CPU time per answer: what the machine's load does not change much, so that
    the rate two idle cores would sustain can be told from a run on a busy machine."""
    session = Session(FAQBOT_CHAT_LIMIT="0")
    try:
        before = cpu_seconds(session.bot.process.pid)
        figures = offered(session, [CHAT_BASE + n for n in range(chats)], chats * rate, seconds, questions)
        figures["bot_cpu_ms_per_answer"] = round((cpu_seconds(session.bot.process.pid) - before) * 1000
                                                 / max(1, figures["answered"]), 1)
        encoder = "answering on words alone" not in session.bot.output()  # said once when the encoder is off
    finally:
        session.close()
    return {"chats": chats, "per_chat_per_s": rate, "seconds": seconds, "distinct_questions": len(set(questions)),
            "encoder_on": encoder, **figures}


def scenario_sustained(rates: list[float], seconds: float) -> list[dict]:
    """One chat per question (a new chat each time: no per-chat limit applies), rates stepping up."""
    session = Session()
    rows = []
    next_chat = CHAT_BASE + 100_000
    try:
        for rate in rates:
            chats = list(range(next_chat, next_chat + int(rate * seconds)))
            next_chat += len(chats)
            row = offered(session, chats, rate, seconds)
            rows.append({"offered_per_s": rate, **{k: v for k, v in row.items() if k != "offered_per_s"}})
            if row["lost"] or row["latency_ms"][90] > 1000:
                break  # past what it sustains
    finally:
        session.close()
    return rows


def scenario_flood(flood: int, limit: str | None) -> dict:
    """``flood`` messages from one chat at once; another chat asks every 0.25 s meanwhile."""
    session = Session(**({} if limit is None else {"FAQBOT_CHAT_LIMIT": limit}))
    flooder, other = CHAT_BASE + 900_001, CHAT_BASE + 900_002
    try:
        key, _ = session.ask(other, QUESTIONS[0])  # warm
        session.wait_for_answers({key}, 60)
        flood_keys = []
        for n in range(flood):
            flood_keys.append(session.ask(flooder, QUESTIONS[n % 4] + "？" * (n % 7))[0])
        waits: dict[tuple[int, int], float] = {}
        for n in range(20):  # other chats, one question each (within any limit), every 0.25 s
            key, at = session.ask(other + n, QUESTIONS[n % 4])
            waits[key] = at
            time.sleep(0.25)
        session.wait_for_answers(set(waits), 300)
        session.api.wait_until(lambda: False, timeout=GRACE)
        first, count = session.first_replies()
        other_ms = [(first[key] - at) * 1000 for key, at in waits.items()]
        to_flooder = session.api.calls_to("sendMessage", lambda c: c.params["chat_id"] == flooder and c.status == 200)
        notices = sum(1 for call in to_flooder if SLOW_DOWN in call.params["text"])
    finally:
        session.close()
    return {"limit": limit or "default (5/10)", "flood": flood, "flood_answered": len(to_flooder) - notices,
            "slow_down_notices": notices,
            "other_chat_wait_ms": {"p50": round(percentile(other_ms, 50), 1), "p90": round(percentile(other_ms, 90), 1),
                                   "max": round(max(other_ms), 1)}}


def scenario_shutdown(queued: int) -> dict:
    """``queued`` questions from as many chats, SIGTERM once the bot fetched them."""
    session = Session()
    try:
        since = time.monotonic()
        keys = [session.ask(CHAT_BASE + 800_000 + n, QUESTIONS[n % len(QUESTIONS)])[0] for n in range(queued)]
        session.api.wait_for("getUpdates", lambda call: call.time > since and call.params.get("offset", 0) > 0)
        time.sleep(0.05)
        began = time.monotonic()
        session.bot.process.send_signal(signal.SIGTERM)
        code = session.bot.process.wait(120)
        took = time.monotonic() - began
        first, _ = session.first_replies()
        answered = sum(1 for key in keys if key in first)
    finally:
        session.close()
    return {"queued": queued, "stop_s": round(took, 2), "exit_code": code, "answered_before_exit": answered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="load,sustained,flood,shutdown", help="scenarios, comma-separated")
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1, help="questions a second per chat (load)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the load scenario")
    parser.add_argument("--questions", type=int, default=0,
                        help="load: ask this many real user questions in turn (default: the tests' six)")
    parser.add_argument("--rates", default="10,20,30,40,60,80", help="offered rates, answers a second (sustained)")
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--compare", action="store_true", help="flood also without the per-chat limit")
    parser.add_argument("--queued", type=int, default=300, help="questions queued at SIGTERM (shutdown)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results: dict = {}
    if "load" in only:
        results["load"] = scenario_load(args.chats, args.rate, args.seconds,
                                        real_questions(args.questions) if args.questions else QUESTIONS)
    if "sustained" in only:
        results["sustained"] = scenario_sustained([float(r) for r in args.rates.split(",")], args.step_seconds)
    if "flood" in only:
        results["flood"] = [scenario_flood(args.flood, None)]
        if args.compare:
            results["flood"].append(scenario_flood(args.flood, "0"))
    if "shutdown" in only:
        results["shutdown"] = scenario_shutdown(args.queued)
    print(json.dumps(results, ensure_ascii=False, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
