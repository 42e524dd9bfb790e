"""What one question can cost: the median of ordinary questions against crafted shapes (long runs
of distinct characters, characters NFKC multiplies, numerals, spaces around a mention, …), per
stage: ``normalise``, ``tokens`` (what the index tokenises), ``question_tokens`` (the capped form
a question should get), the whole ``FAQ.ask`` as the front ends call it (composed by
``question_text``; the core cuts a question at 1,000 characters),
and the Telegram front end's ``question_of`` on a raw 4,096-character message.

    python benchmarks/worst_case.py             # a table: ms per call and × the median question
    python benchmarks/worst_case.py --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.faq import FAQ  # noqa: E402
from bot.text import Tokenizer, question_text  # noqa: E402

ORDINARY = ["借呗升级失败怎么办", "借呗额度异常", "借呗分期还完了为什么没有额度", "借呗账单没有生成是什么原因",
            "为什么我的借呗额度突然没了", "借呗还款后额度多久恢复", "花呗怎么开通", "借呗逾期了会怎么样",
            "我借呗被关闭了还能再开吗", "借呗提前还款有没有手续费"]
CJK = "".join(chr(0x4E00 + 37 * n % 20_000) for n in range(1_000))  # 1,000 distinct characters


def shapes() -> dict[str, str]:
    """The crafted questions, each at the 1,000-character cap (or the raw message size)."""
    story = "，".join(ORDINARY * 30)[:1_000]
    return {
        "ordinary questions run on to 1,000 chars": story,
        "1,000 distinct CJK characters": CJK,
        "U+FDFA × 1,000 (NFKC: 18 characters each)": "\ufdfa" * 1_000,
        "一二 × 500 (numerals, no unit)": "一二" * 500,
        "借呗额度 × 250": "借呗额度" * 250,
        "1,000 ASCII letters": "a" * 1_000,
        "500 English words": " ".join(f"word{n}" for n in range(500))[:1_000],
        "emoji × 1,000": "😀" * 1_000,
        "怎么 × 500": "怎么" * 500,
    }


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``call()`` over ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        runs.append((time.perf_counter() - began) * 1000)
    return statistics.median(runs)


def question_of_cost(repeat: int) -> dict[str, float]:
    """The Telegram front end's question extraction on a raw 4,096-character message."""
    from telegram import Message

    from bot.telegram import question_of

    def message(text: str) -> Message:
        return Message.de_json({"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": text}, None)

    cases = {"ordinary": message("@faq_test_bot 借呗升级失败怎么办"), "4,096 spaces": message(" " * 4_096),
             "spaces and mentions": message((" " * 60 + "@faq_test_bot") * 56)}
    return {name: timed(lambda m=m: question_of(m, "faq_test_bot"), repeat) for name, m in cases.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    faq = FAQ.load(ROOT / "knowledge")
    tokenizer = Tokenizer()
    capped = getattr(tokenizer, "question_tokens", tokenizer.tokens)
    stages: dict[str, Callable[[str], object]] = {
        "normalise": tokenizer.normalise, "tokens": tokenizer.tokens, "question_tokens": capped,
        "ask": lambda question: faq.ask(question_text(question))}  # as the front ends ask
    for question in ORDINARY:
        faq.ask(question)  # warm
    rows = {}
    median = {stage: statistics.median(timed(lambda q=q, f=f: f(q), args.repeat) for q in ORDINARY)
              for stage, f in stages.items()}
    rows["median ordinary question"] = {stage: {"ms": median[stage], "x": 1.0} for stage in stages}
    for name, question in shapes().items():
        rows[name] = {stage: {"ms": (ms := timed(lambda f=f: f(question), args.repeat)), "x": ms / median[stage]}
                      for stage, f in stages.items()}
    telegram = question_of_cost(args.repeat)
    if args.json:
        print(json.dumps({"stages": rows, "question_of_ms": telegram}, ensure_ascii=False, indent=1))
        return 0
    print(f"{'question':<44}" + "".join(f"{stage:>24}" for stage in stages))
    for name, row in rows.items():
        print(f"{name:<44}" + "".join(f"{row[s]['ms']:>13.3f} ms {row[s]['x']:>6.1f}×" for s in stages))
    print("\nquestion_of on a raw Telegram message: "
          + ", ".join(f"{name} {ms:.3f} ms" for name, ms in telegram.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
