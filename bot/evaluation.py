"""Scores the bot on a question file (format of shared/eval/README.md): hit@1, hit@3, MRR,
correct and false abstentions, per style where the file has styles."""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .reply import Answer

MAX_ANSWER_CHARS = 1200
_NOT_COMPARED = re.compile(r"[\s\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    expect: tuple[str, ...]
    style: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.expect)


@dataclass
class Metrics:
    answerable: int = 0
    out_of_scope: int = 0
    hit1: int = 0
    hit3: int = 0
    reciprocal_rank: float = 0.0
    false_abstentions: int = 0
    correct_abstentions: int = 0
    misses: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Shares, or None where a set has no question of that kind."""
        a, o = self.answerable, self.out_of_scope

        def share(count: float, total: int) -> float | None:
            return round(count / total, 4) if total else None

        return {
            "answerable": a,
            "out_of_scope": o,
            "hit@1": share(self.hit1, a),
            "hit@3": share(self.hit3, a),
            "mrr": share(self.reciprocal_rank, a),
            "false_abstention": share(self.false_abstentions, a),
            "correct_abstention": share(self.correct_abstentions, o),
        }


def comparable(text: str) -> str:
    return _NOT_COMPARED.sub("", unicodedata.normalize("NFKC", text))


HALVES = ("teach", "measure", "odd", "even")


def split_path(spec: str | Path) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:half``: a half of a labelled file (``teach``/``measure`` by the hash of a
    reference, ``odd``/``even`` by the number that ends a question's id)."""
    text = str(spec)
    name, _, half = text.rpartition(":")
    return (Path(name), half) if name and half in HALVES else (Path(text), None)


def _in_half(row: dict, number: int, half: str | None) -> bool:
    if half in ("teach", "measure"):
        return "file" in row and split_of(row["file"], row["line"], row["field"]) == half
    if half in ("odd", "even"):
        digits = re.findall(r"\d+", str(row.get("id", number)))
        return bool(digits) and (int(digits[-1]) % 2 == 1) == (half == "odd")
    return True


def load_cases(spec: str | Path) -> list[Case]:
    """A question file (or one half of it, ``FILE:half``); a line may instead point to a real
    question (file, line, field of a dataset in shared/data, as in ``tests/data/real_labels.jsonl``),
    resolved here."""
    path, half = split_path(spec)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})") from None
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON line ({error.msg}); each line is "
                             '{"question": "…", "expect": ["…"]}') from None
        if not isinstance(row, dict) or not ({"question", "expect"} <= row.keys() or {"file", "line", "field"} <= row.keys()):
            raise ValueError(f"{path}:{number}: each line needs \"question\" and \"expect\" (or a dataset reference)")
        if not _in_half(row, number, half):
            continue
        if "question" in row:
            cases.append(Case(str(row.get("id", number)), row["question"], tuple(row.get("expect") or ()), row.get("style") or ""))
        else:
            try:
                cases.append(_reference_case(row, SHARED / "data"))
            except (KeyError, IndexError) as error:
                raise ValueError(f"{path}:{number}: neither a question nor a dataset reference ({error})") from None
    return cases


def correct_passages(case: Case, passages) -> frozenset[int]:
    """The passage numbers whose text holds one of the case's expected phrases (none too long)."""
    wanted = [comparable(phrase) for phrase in case.expect]
    return frozenset(
        n for n, p in enumerate(passages)
        if len(p.answer) <= MAX_ANSWER_CHARS and any(w in comparable(p.question + p.answer) for w in wanted)
    )


def first_correct_rank(case: Case, answer: Answer) -> int | None:
    wanted = [comparable(phrase) for phrase in case.expect]
    for rank, hit in enumerate(answer.hits, start=1):
        if len(hit.passage.answer) > MAX_ANSWER_CHARS:
            continue
        text = comparable(hit.passage.question + hit.passage.answer)
        if any(phrase in text for phrase in wanted):
            return rank
    return None


def evaluate(cases: Iterable[Case], ask: Callable[[str], Answer]) -> tuple[Metrics, dict[str, Metrics]]:
    """Overall metrics and the same per style."""
    overall = Metrics()
    by_style: dict[str, Metrics] = defaultdict(Metrics)
    for case in cases:
        answer = ask(case.question)
        for metrics in (overall, by_style[case.style]):
            if case.answerable:
                metrics.answerable += 1
                rank = first_correct_rank(case, answer) if answer.answered else None
                if not answer.answered:
                    metrics.false_abstentions += 1
                if rank:
                    metrics.hit1 += rank == 1
                    metrics.hit3 += rank <= 3
                    metrics.reciprocal_rank += 1 / rank
                if rank != 1:
                    metrics.misses.append(case.id)
            else:
                metrics.out_of_scope += 1
                if not answer.answered:
                    metrics.correct_abstentions += 1
                else:
                    metrics.misses.append(case.id)
    return overall, dict(by_style)


# --- real users' questions, stored as references (the datasets' text never enters the project) ---

def _project_root() -> Path:
    """The checkout whose label files ``faqbot eval`` reads by default: the one this module lives
    in, else the working directory (an installed package has no tests/ beside it)."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "tests" / "data").is_dir():
            return root
    return Path.cwd()


PROJECT_ROOT = _project_root()
REAL_LABELS = PROJECT_ROOT / "tests" / "data" / "real_labels.jsonl"
LABELLERS = ("second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
             "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth")
MEASURE_ONLY = ("third", "tenth", "eleventh", "fourteenth", "fifteenth", "sixteenth", "seventeenth")  # nothing is learned from them; the others have a teaching half
LABELLED_SETS = (  # what ``faqbot eval`` scores by default (name, file, the half that measures; None: all of it)
    ("real", REAL_LABELS, "measure"),
    *((f"real, {name} labeller", PROJECT_ROOT / "tests" / "data" / f"{name}_labels.jsonl",
       None if name in MEASURE_ONLY else "measure") for name in LABELLERS),
)
SHARED = PROJECT_ROOT.parent / "shared"
DEV_SET = SHARED / "eval" / "dev.jsonl"
WRITTEN_SETS = tuple(f"{PROJECT_ROOT / 'tests' / 'data' / name}" for name in (  # written by others, scored by default
    "heldout_questions.jsonl:even", "heldout2_questions.jsonl:even", "languages_questions.jsonl"))


def split_of(file: str, line: int, field: str) -> str:
    """The fixed rule that splits the labelled real set: a hash of the reference, never its text."""
    digest = hashlib.sha1(f"{file}:{line}:{field}".encode()).digest()
    return "teach" if digest[0] % 2 else "measure"


def resolve_reference(data_dir: Path, file: str, line: int, field: str) -> str:
    """The question text at (file, line, field) of a dataset in shared/data."""
    raw = _dataset_lines(data_dir / file)[line - 1]
    if file.endswith(".json"):
        return json.loads(raw)[field]
    if file.endswith(".csv") and "\t" in raw:  # ATEC: id, sentence1, sentence2, label
        return raw.split("\t")[{"sentence1": 1, "sentence2": 2}[field]].replace("\ufeff", "")
    header = next(csv.reader([_dataset_lines(data_dir / file)[0]]))
    return next(csv.reader([raw]))[header.index(field)]


@functools.lru_cache(maxsize=8)
def _dataset_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").replace("\r\n", "\n").split("\n")


def _reference_case(row: dict, data_dir: Path) -> Case:
    question = resolve_reference(data_dir, row["file"], row["line"], row["field"])
    ref = f"{row['file']}:{row['line']}:{row['field']}"
    return Case(ref, question, tuple(row["expect"]), "real-in" if row["expect"] else "real-oos")


def report(faq, files: list[Path]) -> dict[str, dict]:
    """Figures per question set (and per style), the overall line of each set last."""
    sets: list[tuple[str, list[Case]]] = [(Path(f).name, load_cases(Path(f))) for f in files]
    if not files:
        if DEV_SET.exists():
            sets.append((DEV_SET.name, load_cases(DEV_SET)))
        sets += [(Path(spec).name, load_cases(spec)) for spec in WRITTEN_SETS if split_path(spec)[0].exists()]
        if (SHARED / "data").exists():
            for name, labels, half in LABELLED_SETS:
                if labels.exists():
                    sets.append((f"{name} ({'measuring half' if half else 'all'})",
                                 load_cases(f"{labels}:{half}" if half else labels)))
    if not sets:
        raise ValueError("no question file given and no default set found")
    figures: dict[str, dict] = {}
    for name, cases in sets:
        overall, by_style = evaluate(cases, lambda q: faq.ask(q, 3))
        if len(by_style) > 1:
            figures.update({f"{name} · {style}": m.as_dict() for style, m in sorted(by_style.items())})
        figures.update({f"{name} · ranked by {retriever} alone": m.as_dict()
                        for retriever, m in rankings(faq, cases).items()})
        figures[name] = overall.as_dict()
    return figures


def rankings(faq, cases: Iterable[Case]) -> dict[str, Metrics]:
    """hit@k and MRR of each retriever alone and of their fusion, answering every answerable
    question (no refusal): what each ranking is worth by itself."""
    from .decision import top

    metrics: dict[str, Metrics] = defaultdict(Metrics)
    for case in cases:
        if not case.answerable:
            continue
        signals = faq.signals(case.question)
        correct = correct_passages(case, faq.index.passages)
        scores = {**signals.retrievers, "fusion": faq.fused(signals)} if signals.dense else dict(signals.retrievers)
        for retriever, values in scores.items():
            m = metrics[retriever]
            m.answerable += 1
            ranked = [int(i) for i in top(values, 3)] if signals.tokens or retriever != "bm25" else []
            rank = next((r for r, i in enumerate(ranked, start=1) if i in correct), None)
            if rank:
                m.hit1 += rank == 1
                m.hit3 += 1
                m.reciprocal_rank += 1 / rank
    return dict(metrics)
