"""Consistency on paraphrases: two real questions with the same meaning should get the same reply.

Reads the ATEC pairs labelled 1 (with --with-afqmc also AFQMC's) (annotators judged both questions to mean the same)
from ../shared/data and asks the bot both sides. Over the pairs where at least one side is
answered, it reports the share where both sides get the same first passage. Skips cleanly when
the data is absent. Not part of the test run.

    python benchmarks/paraphrase.py [--knowledge DIR] [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.faq import FAQ  # noqa: E402


def paraphrase_pairs(data: Path, with_afqmc: bool = False) -> Iterator[tuple[str, str, str]]:
    """(source, sentence1, sentence2) for every ATEC pair labelled 1 (and AFQMC's with ``with_afqmc``)."""
    atec = data / "atec" / "atec_nlp_sim_train.csv"
    if atec.exists():
        for line in atec.read_text(encoding="utf-8-sig").splitlines():
            fields = line.replace("\ufeff", "").rstrip("\r").split("\t")
            if len(fields) == 4 and fields[3].strip() == "1":
                yield "atec", fields[1], fields[2]
    if not with_afqmc:
        return
    train = data / "afqmc" / "train.csv"
    if train.exists():
        with train.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["label"].strip() == "1":
                    yield "afqmc-train", row["sentence1"], row["sentence2"]
    dev = data / "afqmc" / "dev.json"
    if dev.exists():
        for line in dev.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if str(row["label"]) == "1":
                yield "afqmc-dev", row["sentence1"], row["sentence2"]


def shown_passages(faq: FAQ, question: str) -> list[str] | None:
    """The ids of the passages a user is shown (best first), or None when refused."""
    answer = faq.ask(question, 3)
    return [hit.passage.id for hit in answer.hits] if answer.answered else None


def measure(faq: FAQ, pairs: Iterator[tuple[str, str, str]]) -> dict:
    counts: Counter = Counter()
    seen: set[tuple[str, str]] = set()
    for _, first, second in pairs:
        key = tuple(sorted((first, second)))
        if key in seen:  # AFQMC re-releases some ATEC pairs
            continue
        seen.add(key)
        a, b = shown_passages(faq, first), shown_passages(faq, second)
        counts["pairs"] += 1
        if a is None and b is None:
            counts["both refused"] += 1
        elif a is None or b is None:
            counts["one refused"] += 1
        elif a[0] == b[0]:
            counts["same passage"] += 1
        else:
            counts["different passages"] += 1
            counts["different but one's first among the other's 3"] += a[0] in b or b[0] in a
    answered = counts["pairs"] - counts["both refused"]
    shared = counts["same passage"] + counts["different but one's first among the other's 3"]
    return {
        **counts,
        "at least one answered": answered,
        "agreement": round(counts["same passage"] / answered, 4) if answered else None,
        "agreement within the shown passages": round(shared / answered, 4) if answered else None,
        "decision agreement": round((counts["same passage"] + counts["both refused"]) / counts["pairs"], 4)
        if counts["pairs"] else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knowledge", type=Path, default=None, help="knowledge folder (default: the shipped one)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--with-afqmc", action="store_true", help="also AFQMC's train and dev pairs labelled 1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: no data at {args.data}")
        return 0
    faq = FAQ.load(Settings.from_env(str(args.knowledge) if args.knowledge else None).knowledge)
    figures = measure(faq, paraphrase_pairs(args.data, args.with_afqmc))
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"{key:>{width}}: {value}")
        print("agreement = same first passage / pairs where at least one side is answered;")
        print("within the shown passages = also counting pairs where one side's first passage is among the other's three")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
