"""``faqbot calibrate``: fit the fusion weights and the scope decision on labelled questions.

Fusion: the weights of the standardised retriever scores that maximise the softmax probability of
the right passages (a listwise logistic regression) over the answerable questions. Scope: a
logistic regression of "answerable" on ``decision.scope_features`` of the best fused passage,
one with the encoder's signals and one on words alone. Thresholds are read off out-of-fold
probabilities (k-fold cross-validation), so they are not chosen on the very questions that
fitted the weights: ``refuse_below`` is the lowest probability at which at most
``max_false_answers`` of the out-of-scope questions would be answered, ``answer_at`` the one at
half that rate; in between the bot asks which passage was meant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import MAX_FALSE_ANSWERS
from .decision import RETRIEVERS, Calibration, ScopeModel, Signals, fuse, scope_features, standardised, top
from .evaluation import LABELLED_SETS, PROJECT_ROOT, Case, correct_passages, load_cases

FOLDS = 5
SEED = 20261201


def default_files() -> list[str]:
    """The teaching data: teaching halves of the labelled real questions, our own questions and
    the odd halves of the held-out sets (the even halves and measuring halves only measure)."""
    data = PROJECT_ROOT / "tests" / "data"
    return [*(f"{labels}:teach" for _, labels, half in LABELLED_SETS if half),
            str(data / "own_questions.jsonl"), f"{data / 'heldout_questions.jsonl'}:odd",
            f"{data / 'heldout2_questions.jsonl'}:odd"]


@dataclass(frozen=True)
class Example:
    """One labelled question, as the retrievers saw it."""

    case: Case
    signals: Signals
    correct: frozenset[int]


def collect(faq, specs: Sequence[str]) -> list[Example]:
    examples = []
    for spec in specs:
        for case in load_cases(spec):
            signals = faq.signals(case.question)
            if signals.tokens:  # empty questions are refused before any model
                examples.append(Example(case, signals, correct_passages(case, faq.index.passages)))
    return examples


def fit_fusion(examples: Sequence[Example], steps: int = 400, rate: float = 0.5, l2: float = 1e-3) -> dict[str, float]:
    """Weights of the standardised retrievers (listwise softmax, gradient descent from equal
    weights)."""
    usable = [e for e in examples if e.correct and e.signals.dense]
    if not usable:
        return {name: 1.0 for name in RETRIEVERS}
    matrices = [np.stack([standardised(np.asarray(e.signals.retrievers[r], dtype=np.float64)) for r in RETRIEVERS], 1)
                for e in usable]
    masks = [np.isin(np.arange(len(m)), list(e.correct)) for m, e in zip(matrices, usable)]
    weights = np.ones(len(RETRIEVERS))
    for _ in range(steps):
        gradient = l2 * weights
        for matrix, mask in zip(matrices, masks):
            scores = matrix @ weights
            p = np.exp(scores - scores.max())
            p /= p.sum()
            q = p * mask / (p * mask).sum()  # the right passages' share among themselves
            gradient += matrix.T @ (p - q) / len(matrices)
        weights -= rate * gradient
    return {name: round(float(w), 4) for name, w in zip(RETRIEVERS, weights)}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 2000, rate: float = 0.5) -> tuple[np.ndarray, float]:
    """Plain L2-regularised logistic regression on standardised features; weights returned for
    the raw features."""
    mean, spread = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / spread
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= rate * (z.T @ (p - y) / len(y) + l2 * w)
        b -= rate * float(np.mean(p - y))
    raw = w / spread
    return raw, b - float(raw @ mean)


def scope_table(examples: Sequence[Example], fusion: dict[str, float], dense: bool, index) -> tuple[list[str], np.ndarray, np.ndarray, list[bool]]:
    """Features of every example's best fused passage, whether it is answerable, and whether
    the best passage is a right one."""
    rows, labels, right = [], [], []
    for e in examples:
        retrievers = e.signals.retrievers if dense else {"bm25": e.signals.retrievers["bm25"]}
        signals = replace(e.signals, retrievers=retrievers,
                          outside_dense=e.signals.outside_dense if dense else None)
        fused = fuse(retrievers, fusion) if dense else retrievers["bm25"]
        best = int(top(fused, 1)[0])
        coverage = index.coverage(e.signals.tokens, index.vocabulary(best), e.signals.information)
        rows.append(scope_features(signals, best, coverage, index.names_a_sibling(e.signals.tokens, best)))
        labels.append(1.0 if e.case.answerable else 0.0)
        right.append(best in e.correct)
    names = list(rows[0])
    return names, np.array([[r[n] for n in names] for r in rows]), np.array(labels), right


def out_of_fold(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each example's probability from a model fitted on the other folds."""
    order = np.random.default_rng(SEED).permutation(len(y))
    probabilities = np.zeros(len(y))
    for fold in range(FOLDS):
        held = order[fold::FOLDS]
        kept = np.setdiff1d(order, held)
        w, b = fit_logistic(x[kept], y[kept])
        probabilities[held] = 1 / (1 + np.exp(-(x[held] @ w + b)))
    return probabilities


def threshold_for(probabilities: np.ndarray, y: np.ndarray, max_false_answers: float) -> float:
    """The lowest threshold at which at most ``max_false_answers`` of the out-of-scope examples
    reach it (are answered)."""
    outside = np.sort(probabilities[y == 0])[::-1]
    allowed = int(math.floor(max_false_answers * len(outside)))
    if allowed >= len(outside):
        return 0.0
    return float(np.nextafter(outside[allowed], 1.0))


def tradeoff(probabilities: np.ndarray, y: np.ndarray, right: Sequence[bool],
             thresholds: Sequence[float] = tuple(np.linspace(0.05, 0.95, 19))) -> list[dict]:
    """For each threshold (by default a range): false answers (out of scope answered), false
    refusals (answerable refused) and hit@1 of the answerable."""
    right_arr = np.array(right)
    rows = []
    for t in thresholds:
        answered = probabilities >= t
        rows.append({
            "threshold": round(float(t), 4),
            "false_answers": round(float(answered[y == 0].mean()), 3) if (y == 0).any() else None,
            "false_refusals": round(float((~answered[y == 1]).mean()), 3) if (y == 1).any() else None,
            "hit@1": round(float((answered & right_arr)[y == 1].mean()), 3) if (y == 1).any() else None,
        })
    return rows


def fit_close(examples: Sequence[Example], fusion: dict[str, float]) -> float:
    """The softmax ratio from which the runner-up makes the bot ask which: chosen so that asking
    helps (the best was wrong, the runner-up right) at least twice as often as it delays a right
    answer."""
    pairs = []
    for e in examples:
        if not e.correct or not e.signals.dense:
            continue
        fused = fuse(e.signals.retrievers, fusion)
        first, second = (int(i) for i in top(fused, 2))
        pairs.append((math.exp(fused[second] - fused[first]), first in e.correct, second in e.correct))
    best_ratio, best_gain = 1.0, 0.0
    for ratio in np.linspace(0.3, 0.95, 14):
        helped = sum(1 for r, f, s in pairs if r >= ratio and not f and s)
        delayed = sum(1 for r, f, s in pairs if r >= ratio and f)
        gain = helped - 0.5 * delayed
        if gain > best_gain:
            best_ratio, best_gain = float(ratio), gain
    return round(best_ratio, 3)


def calibrate(faq, specs: Sequence[str], max_false_answers: float = MAX_FALSE_ANSWERS) -> tuple[Calibration, dict]:
    """A new calibration from labelled questions, and the figures that justify it (the refusal
    trade-off of out-of-fold probabilities, per scope model)."""
    examples = collect(faq, specs)
    fusion = fit_fusion(examples)
    figures: dict = {"examples": len(examples), "answerable": sum(e.case.answerable for e in examples),
                     "max_false_answers": max_false_answers}
    models = {}
    for kind, dense in (("hybrid", True), ("lexical", False)):
        if dense and not all(e.signals.dense for e in examples):
            models[kind] = faq.calibration.hybrid  # no encoder here: keep what was fitted with one
            continue
        names, x, y, right = scope_table(examples, fusion, dense, faq.index)
        oof = out_of_fold(x, y)
        w, b = fit_logistic(x, y)
        refuse_below = threshold_for(oof, y, max_false_answers)
        answer_at = max(refuse_below, threshold_for(oof, y, max_false_answers / 2))
        models[kind] = ScopeModel({n: round(float(v), 4) for n, v in zip(names, w)}, round(b, 4),
                                  round(refuse_below, 4), round(answer_at, 4))
        figures[kind] = {"tradeoff": tradeoff(oof, y, right), "refuse_below": round(refuse_below, 4),
                         "answer_at": round(answer_at, 4),
                         "operating_point": tradeoff(oof, y, right, (refuse_below,))[0]}
    calibration = Calibration(
        fusion=fusion, hybrid=models["hybrid"], lexical=models["lexical"], close=fit_close(examples, fusion),
        made_by=f"faqbot calibrate --max-false-answers {max_false_answers} " + " ".join(_short(s) for s in specs),
    )
    return calibration, figures


def _short(spec: str) -> str:
    path = Path(spec.split(":")[0])
    try:
        return str(Path(spec).relative_to(PROJECT_ROOT))
    except ValueError:
        return path.name + spec[len(str(path)):]
