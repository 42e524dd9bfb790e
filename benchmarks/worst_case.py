"""What one question can cost: the median of ordinary questions against crafted shapes (long runs
of distinct characters, characters NFKC multiplies, numerals, a story of two long sentences, the
knowledge's commonest words, …), per lexical stage as ``FAQ`` runs them:

- ``tokens``: ``Index.question_tokens`` (normalise, cut with jieba, a story's last sentence again);
- ``rank``: BM25 of every passage (``Index.passage_scores``);
- ``scope``: the words' signals of the scope decision (``information``, ``outside()``, the
  coverage of the best passages);
- ``words``: the whole ``FAQ.ask`` on words alone (all of the above, the decision and the reply),
  as the front ends call it (composed by ``question_text``; the core cuts a question at 1,000
  characters). Its × column is the bound of issue 12: at most 10× the median question;
- ``ask``: ``FAQ.ask`` with the sentence encoder, when it loads (``--lexical`` leaves it out);

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

from bot.faq import FAQ, SPARE_HITS  # noqa: E402
from bot.search import Index  # noqa: E402
from bot.text import question_text  # noqa: E402

ORDINARY = ["借呗升级失败怎么办", "借呗额度异常", "借呗分期还完了为什么没有额度", "借呗账单没有生成是什么原因",
            "为什么我的借呗额度突然没了", "借呗还款后额度多久恢复", "花呗怎么开通", "借呗逾期了会怎么样",
            "我借呗被关闭了还能再开吗", "借呗提前还款有没有手续费"]
CJK = "".join(chr(0x4E00 + 37 * n % 20_000) for n in range(1_000))  # 1,000 distinct characters
SHOWN = 3 + SPARE_HITS  # passages ``FAQ.ask`` fetches by default


def shapes(index: Index) -> dict[str, str]:
    """The crafted questions, each at the core's 1,000-character cap."""
    story = "，".join(ORDINARY * 30)[:1_000]
    commonest = sorted(index.engine.idf, key=index.engine.idf.get)  # in the most documents first
    return {
        "ordinary questions run on to 1,000 chars": story,
        "two sentences of 500 chars (read twice)": story[:499] + "。" + story[500:],
        "1,000 distinct CJK characters": CJK,
        "1,000 distinct CJK in two sentences": CJK[:499] + "。" + CJK[500:],
        "the knowledge's commonest words, 1,000 chars": " ".join(commonest)[:1_000],
        "U+FDFA × 1,000 (NFKC: 18 characters each)": "\ufdfa" * 1_000,
        "一二 × 500 (numerals, no unit)": "一二" * 500,
        "借呗额度 × 250": "借呗额度" * 250,
        "1,000 ASCII letters": "a" * 1_000,
        "500 English words": " ".join(f"word{n}" for n in range(500))[:1_000],
        "emoji × 1,000": "😀" * 1_000,
        "怎么 × 500": "怎么" * 500,
    }


def timed(call: Callable[[], object], repeat: int) -> float:
    """Milliseconds of ``call()``, the fastest of ``repeat`` runs: other work on the machine only
    ever adds time, so the fastest run is the cost itself, and ratios hold on a busy machine."""
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        runs.append((time.perf_counter() - began) * 1000)
    return min(runs)


def stages(words_only: FAQ, faq: FAQ | None) -> dict[str, Callable[[str], Callable[[], object]]]:
    """Each stage as a call on the question as the core receives it (composed, at most 1,000
    characters); ``rank`` and ``scope`` get the question's tokens computed beforehand."""
    index = words_only.index

    def rank(question: str) -> Callable[[], object]:
        tokens = index.question_tokens(question)
        return lambda: index.passage_scores(tokens) if tokens else None

    def scope(question: str) -> Callable[[], object]:
        tokens = index.question_tokens(question)
        best = [passage for passage, _ in index.top(tokens, SHOWN)] if tokens else []

        def signals() -> None:
            information = index.information(set(tokens)) if tokens else 0.0
            index.outside(tokens, information)
            for passage in best:
                index.coverage(tokens, index.vocabulary(passage), information)
        return signals

    calls: dict[str, Callable[[str], Callable[[], object]]] = {
        "tokens": lambda q: lambda: index.question_tokens(q), "rank": rank, "scope": scope,
        "words": lambda q: lambda: words_only.ask(q)}
    if faq is not None:
        calls["ask"] = lambda q: lambda: faq.ask(q)
    return {name: (lambda question, make=make: make(question_text(question)[:1_000])) for name, make in calls.items()}


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
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--lexical", action="store_true", help="leave out FAQ.ask with the sentence encoder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    words_only = FAQ.load(ROOT / "knowledge", semantic=False)
    faq = None if args.lexical else FAQ.load(ROOT / "knowledge")
    calls = stages(words_only, faq)
    for question in ORDINARY:
        for warm in (words_only, faq or words_only):
            warm.ask(question)
    median = {stage: statistics.median(timed(make(q), args.repeat) for q in ORDINARY) for stage, make in calls.items()}
    rows = {"median ordinary question": {stage: {"ms": median[stage], "x": 1.0} for stage in calls}}
    for name, question in shapes(words_only.index).items():
        rows[name] = {stage: {"ms": (ms := timed(make(question), args.repeat)), "x": ms / median[stage]}
                      for stage, make in calls.items()}
    worst = max(rows, key=lambda name: rows[name]["words"]["x"])
    telegram = question_of_cost(args.repeat)
    if args.json:
        print(json.dumps({"stages": rows, "worst_words_only": worst, "question_of_ms": telegram},
                         ensure_ascii=False, indent=1))
        return 0
    print(f"{'question':<46}" + "".join(f"{stage:>21}" for stage in calls))
    for name, row in rows.items():
        print(f"{name:<46}" + "".join(f"{row[s]['ms']:>10.3f} ms {row[s]['x']:>6.1f}×" for s in calls))
    print(f"\nworst on words alone: {worst}, {rows[worst]['words']['x']:.1f}× the median question")
    print("question_of on a raw Telegram message: "
          + ", ".join(f"{name} {ms:.3f} ms" for name, ms in telegram.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
