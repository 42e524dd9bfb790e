"""How often two labellers agree, beside how often the bot agrees with each: the ceiling that
labels allow, and how far the bot is from it.

Both files label the same real questions (references into ../shared/data, as
``tests/data/README.md`` describes), independently. Reported: agreement on answerable or out of
scope (and Cohen's kappa); among questions both call answerable, the share whose right passages
overlap; and the bot's own figures against each labeller (answered or refused as that labeller
says; first passage right). Skips cleanly when the data is absent. Not part of the test run.

    python benchmarks/agreement.py [FIRST SECOND] [--knowledge DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation import SHARED, Case, correct_passages, load_cases  # noqa: E402
from bot.faq import FAQ  # noqa: E402

DATA = ROOT / "tests" / "data"


def kappa(first: list[bool], second: list[bool]) -> float:
    """Cohen's kappa of two yes/no labellings: agreement beyond what their base rates give by chance."""
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    p, q = sum(first) / n, sum(second) / n
    chance = p * q + (1 - p) * (1 - q)
    return (observed - chance) / (1 - chance) if chance < 1 else 1.0


def agreement(faq: FAQ, first: list[Case], second: list[Case]) -> dict:
    passages = faq.index.passages
    scope = [(a.answerable, b.answerable) for a, b in zip(first, second)]
    both = [(correct_passages(a, passages), correct_passages(b, passages))
            for a, b in zip(first, second) if a.answerable and b.answerable]
    answers = [faq.ask(a.question, 3) for a in first]
    figures = {
        "questions": len(first),
        "labellers agree on scope": round(sum(x == y for x, y in scope) / len(scope), 3),
        "kappa": round(kappa([x for x, _ in scope], [y for _, y in scope]), 3),
        "both answerable": len(both),
        "of those, right passages overlap": round(sum(bool(x & y) for x, y in both) / len(both), 3) if both else None,
    }
    for name, cases in (("first", first), ("second", second)):
        agrees = [answer.answered == case.answerable for answer, case in zip(answers, cases)]
        right = [bool(answer.hits) and answer.hits[0].passage.id in {passages[i].id for i in correct_passages(case, passages)}
                 for answer, case in zip(answers, cases) if case.answerable]
        figures[f"bot agrees with the {name} on scope"] = round(sum(agrees) / len(agrees), 3)
        figures[f"bot hit@1 on the {name}'s answerable"] = round(sum(right) / len(right), 3) if right else None
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=[str(DATA / "tenth_labels.jsonl"), str(DATA / "tenth_relabelled.jsonl")])
    parser.add_argument("--knowledge", type=Path, default=ROOT / "knowledge")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if len(args.files) != 2:
        parser.error("give two label files of the same questions, or none")
    if not (SHARED / "data").is_dir():
        print("../shared/data is absent: nothing to compare (skipped)")
        return 0
    first, second = (load_cases(f) for f in args.files)
    if not first or [c.id for c in first] != [c.id for c in second]:
        parser.error("the two files must label the same questions, in the same order, and not none")
    figures = agreement(FAQ.load(args.knowledge, wait_for_vectors=True), first, second)
    print(json.dumps(figures, ensure_ascii=False, indent=1) if args.json
          else "\n".join(f"{name}: {value}" for name, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
