"""``faqbot report`` on a large question log: wall-clock time of the real command, end to end
(start, reading, tokenising, grouping, printing), for logs of 1,000 to 100,000 entries.

The questions are real user questions (ATEC and AFQMC in ``../shared/data``, drawn with
repeats, as a log has them) or, with ``--synthetic`` or without that data, questions of 2-6 words
from a Zipf-like vocabulary: the shape that makes the most groups compete (a worst case for
grouping). The log is written into a temporary folder, never into the project.

    python benchmarks/report.py                     # 1k, 10k, 100k entries of real questions
    python benchmarks/report.py --synthetic --sizes 100000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def real_questions() -> list[str]:
    """The distinct user questions of the shared data sets (empty when they are absent)."""
    questions: set[str] = set()
    atec = DATA / "atec" / "atec_nlp_sim_train.csv"
    if atec.exists():
        for line in atec.read_text(encoding="utf-8-sig").split("\n"):
            questions.update(field.replace("\ufeff", "") for field in line.split("\t")[1:3])
    afqmc = DATA / "afqmc" / "train.csv"
    if afqmc.exists():
        with afqmc.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                questions.update((row["sentence1"], row["sentence2"]))
    return sorted(q.strip() for q in questions if q.strip())


def synthetic_questions(rng: random.Random, count: int) -> list[str]:
    vocabulary = [f"词{n}" for n in range(2_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    return [" ".join(rng.choices(vocabulary, weights, k=rng.randint(2, 6))) for _ in range(count)]


def write_log(path: Path, questions: list[str], size: int, rng: random.Random) -> int:
    """``size`` entries drawn from ``questions`` (with repeats); the number of distinct wordings."""
    drawn = [rng.choice(questions) for _ in range(size)]
    with path.open("w", encoding="utf-8") as handle:
        for n, question in enumerate(drawn):
            entry = {"time": "2026-12-01T00:00:00+0000", "kind": "refused" if n % 5 else "downvote",
                     "chat": f"{rng.randrange(5_000):016x}", "question": question, "best_score": 1.0, "shown": []}
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return len(set(drawn))


def timed_report(log: Path, home: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAQBOT_LOG_DIR": str(home), "PYTHONIOENCODING": "utf-8"}
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bot", "report", "--log", str(log)], capture_output=True,
                            text=True, encoding="utf-8", env=env, cwd=home, check=False)
    took = time.perf_counter() - began
    if result.returncode:
        raise SystemExit(result.stderr)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--synthetic", action="store_true", help="Zipf-like word questions instead of real ones")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    questions = [] if args.synthetic else real_questions()
    kind = "real user questions" if questions else "synthetic questions"
    if not questions:
        questions = synthetic_questions(rng, 150_000)
    print(f"faqbot report over {kind}")
    print(f"{'entries':>8} {'distinct':>9} {'seconds':>8}")
    with tempfile.TemporaryDirectory(prefix="faqbot-report-") as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            log = Path(folder) / "unanswered.jsonl"
            distinct = write_log(log, questions, size, rng)
            print(f"{size:>8,} {distinct:>9,} {timed_report(log, Path(folder)):>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
