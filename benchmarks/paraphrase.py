"""Consistency on paraphrases: two real questions with the same meaning should get the same reply.

Reads the ATEC pairs labelled 1 (with --with-afqmc also AFQMC's) (annotators judged both questions to mean the same)
from ../shared/data and asks the bot both sides. Over the pairs where at least one side is
answered, it reports the share where both sides get the same first passage. A clarification
("您是想问：…", ``clarify: true``) counts as answered, its first candidate as its first passage. Skips cleanly when
the data is absent. Not part of the test run.

What a careful person would get: ``tests/data/paraphrase_pair_labels.jsonl`` labels both sides of
150 ATEC pairs (drawn with 借呗 on a side, seed 20261209), each side on its own, shuffled, by a
labeller who never saw the bot or the other side. The same agreement is reported for the labeller
and for the bot on those pairs (``--labelled-only``: only this, in seconds).

    python benchmarks/paraphrase.py [--knowledge DIR] [--data DIR] [--json] [--labelled-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.evaluation import correct_passages, load_cases  # noqa: E402
from bot.faq import FAQ  # noqa: E402

LABELLED_PAIRS = ROOT / "tests" / "data" / "paraphrase_pair_labels.jsonl"


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


def shown_passages(faq: FAQ, question: str, counts: Counter | None = None) -> list[str] | None:
    """The ids of the passages a user is shown (best first), or None when refused. A
    clarification ("您是想问：…", ``clarify``) counts as answered: its candidates, best first."""
    answer = faq.ask(question, 3)
    if counts is not None and answer.answered:
        counts["questions clarified"] += answer.clarify
    return [hit.passage.id for hit in answer.hits] if answer.answered and answer.hits else None


def distinct_pairs(pairs: Iterator[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The pairs in order, each unordered pair once (AFQMC re-releases some ATEC pairs)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for pair in pairs:
        key = tuple(sorted(pair[1:]))
        if key not in seen:
            seen.add(key)
            kept.append(pair)
    return kept


def measure(faq: FAQ, pairs: Iterable[tuple[str, str, str]], progress: int = 0) -> dict:
    counts: Counter = Counter()
    for number, (_, first, second) in enumerate(pairs, 1):
        a, b = shown_passages(faq, first, counts), shown_passages(faq, second, counts)
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
        if progress and number % progress == 0:  # running figures on stderr, for long runs
            print(json.dumps(figures_of(counts), ensure_ascii=False), file=sys.stderr, flush=True)
    return figures_of(counts)


def labelled_agreement(faq: FAQ, path: Path) -> dict:
    """Agreement of a labeller and of the bot on the same pairs, each over the pairs where it
    answers at least one side: the same passage (for the labeller, overlapping passages) on both."""
    pairs: dict[tuple[str, str], list] = defaultdict(list)
    for case in load_cases(path):
        file, line, _ = case.id.rsplit(":", 2)
        pairs[(file, line)].append(case)
    passages = faq.index.passages
    labeller, bot = Counter(), Counter()
    for sides in (cases for cases in pairs.values() if len(cases) == 2):
        labelled = [frozenset(passages[n].id for n in correct_passages(c, passages)) if c.answerable else None
                    for c in sides]
        shown = [frozenset(ids[:1]) if (ids := shown_passages(faq, c.question)) else None for c in sides]
        for counts, (a, b) in ((labeller, labelled), (bot, shown)):
            if a is not None or b is not None:
                counts["at least one answered"] += 1
                counts["same passage"] += bool(a and b and a & b)
    return {"labelled pairs": sum(len(cases) == 2 for cases in pairs.values()),
            **{f"{who}: agreement": round(c["same passage"] / c["at least one answered"], 4) if c["at least one answered"] else None
               for who, c in (("labeller", labeller), ("bot", bot))},
            **{f"{who}: pairs with a side answered": c["at least one answered"] for who, c in (("labeller", labeller), ("bot", bot))}}


def figures_of(counts: Counter) -> dict:
    counts = Counter(counts)
    answered = counts["pairs"] - counts["both refused"]
    shared = counts["same passage"] + counts["different but one's first among the other's 3"]
    clarified = counts.pop("questions clarified", 0)
    return {
        **counts,
        "questions clarified (counted as answered)": clarified,
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
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="a seeded random sample of N pairs instead of all (an estimate; say so)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--progress", type=int, default=0, metavar="N", help="running figures on stderr every N pairs")
    parser.add_argument("--labelled-only", action="store_true", help="only the labelled pairs: a person beside the bot")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: no data at {args.data}")
        return 0
    faq = FAQ.load(Settings.from_env(str(args.knowledge) if args.knowledge else None).knowledge)
    figures = {}
    if not args.labelled_only:
        pairs = distinct_pairs(paraphrase_pairs(args.data, args.with_afqmc))
        if args.sample and args.sample < len(pairs):
            pairs = random.Random(args.seed).sample(pairs, args.sample)
        figures = measure(faq, pairs, args.progress)
    if LABELLED_PAIRS.exists():
        figures |= labelled_agreement(faq, LABELLED_PAIRS)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"{key:>{width}}: {value}")
        print("agreement = same first passage / pairs where at least one side is answered;")
        print("within the shown passages = also counting pairs where one side's first passage is among the other's three")
        print("a clarification (clarify: true) counts as answered, its first candidate as its first passage")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
