"""Scores the bot on a question file (format of shared/eval/README.md): hit@1, hit@3, MRR,
correct and false abstentions, per style where the file has styles."""

from __future__ import annotations

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
        a, o = self.answerable or 1, self.out_of_scope or 1
        return {
            "answerable": self.answerable,
            "out_of_scope": self.out_of_scope,
            "hit@1": round(self.hit1 / a, 4),
            "hit@3": round(self.hit3 / a, 4),
            "mrr": round(self.reciprocal_rank / a, 4),
            "false_abstention": round(self.false_abstentions / a, 4),
            "correct_abstention": round(self.correct_abstentions / o, 4),
        }


def comparable(text: str) -> str:
    return _NOT_COMPARED.sub("", unicodedata.normalize("NFKC", text))


def load_cases(path: Path) -> list[Case]:
    cases = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            cases.append(Case(str(row.get("id", number)), row["question"], tuple(row.get("expect") or ()), row.get("style") or ""))
    return cases


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
