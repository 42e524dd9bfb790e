"""Answer, clarify or refuse, from calibrated signals. Pure: numbers in, a decision out.

Two learned pieces, both fitted by ``faqbot calibrate`` (``bot.calibration``) and read from the
knowledge folder's ``calibration.json``:

- **Fusion**: a passage's score is a weighted sum of its standardised retriever scores (BM25, the
  best cosine to its questions, the mean of its few best, the best cosine to a sentence of its
  answer). The weights were fitted so that the softmax over passages puts the right passage first
  on labelled questions.
- **Scope**: the chance that the question is answered at all, a logistic model over what the best
  passage holds (lexical coverage, cosine) against what the nearest out-of-scope example holds.
  Its thresholds come from a target rate of false answers; between refusing and answering lies a
  band where the bot asks "您是想问：…" instead.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Mapping

import numpy as np

CALIBRATION_FILE = "calibration.json"
RETRIEVERS = ("bm25", "dense_questions", "dense_near", "dense_answer")


class Outcome(str, Enum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    REFUSE = "refuse"


@dataclass(frozen=True)
class ScopeModel:
    """P(answerable) = logistic(bias + Σ weight·feature); refuse under ``refuse_below``, ask which
    passage was meant under ``answer_at``."""

    weights: dict[str, float]
    bias: float
    refuse_below: float
    answer_at: float

    def probability(self, features: Mapping[str, float]) -> float:
        z = self.bias + sum(w * features[name] for name, w in self.weights.items())
        return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class Calibration:
    """Everything the decision learned; see ``bot.calibration`` for how it is fitted."""

    fusion: dict[str, float]
    hybrid: ScopeModel  # with the encoder
    lexical: ScopeModel  # on words alone
    close: float  # a second candidate whose softmax share is this close to the best's: ask which
    made_by: str = ""  # the command and data that produced it, quoted by ``faqbot eval``

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        """Raises ValueError when a model weighs a feature this version does not compute (a
        calibration made by an older version): it would fail on every question."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for kind, dense in (("hybrid", True), ("lexical", False)):
            unknown = set(data[kind]["weights"]) - feature_names(dense)
            if unknown:
                raise ValueError(f"{path}: its {kind} model weighs {', '.join(sorted(unknown))}, which this "
                                 f"version no longer computes; run `faqbot calibrate` again")
            data[kind] = ScopeModel(**data[kind])
        return cls(**data)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def scope(self, dense: bool) -> ScopeModel:
        return self.hybrid if dense else self.lexical


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    ranked: tuple[int, ...]  # passage numbers, best first (the candidates of a clarification)
    scores: tuple[float, ...]  # their fused scores
    confidence: float  # P(answerable)


@dataclass(frozen=True)
class Signals:
    """What the retrievers say of one question: a score per passage from each retriever present,
    and how near the nearest question this knowledge does not answer is (by words, by meaning)."""

    tokens: tuple[str, ...]
    retrievers: dict[str, np.ndarray]
    outside_coverage: float
    outside_dense: float | None
    outside_topic: int | None
    neighbours: float | None = None  # share of passage questions among the nearest examples
    outside_topic_by_words: int | None = None  # the nearest out-of-scope example's topic, by words
    information: float = 0.0  # the question's idf mass (``Index.information``), which coverage shares
    dense_scope: float | None = None  # where the question lies along the scope direction (``semantic.scope_direction``)

    @property
    def dense(self) -> bool:
        return "dense_questions" in self.retrievers


def scope_features(signals: Signals, best: int, coverage: float, sibling: bool) -> dict[str, float]:
    """The scope model's inputs for the best passage: what it holds of the question against what
    the nearest out-of-scope example holds, by words and (when there is an encoder) by meaning;
    whether the question is about a sibling product the passage does not speak of. On words
    alone, how strongly BM25 singles the passage out and how much the question says stand in for
    meaning (with them the lexical model refuses a third fewer answerable questions)."""
    features = {"coverage": coverage, "coverage_margin": coverage - signals.outside_coverage,
                "sibling": float(sibling)}
    if signals.dense:
        near = float(signals.retrievers["dense_questions"][best])
        return features | {
            "dense": near,
            "dense_margin": near - (signals.outside_dense or 0.0),
            "neighbours": signals.neighbours if signals.neighbours is not None else 1.0,
            "dense_scope": signals.dense_scope or 0.0,
        }
    bm25 = np.asarray(signals.retrievers["bm25"], dtype=np.float64)
    runner_up = max(bm25[:best].max(initial=0.0), bm25[best + 1:].max(initial=0.0))  # BM25 is never negative
    return features | {
        "bm25": math.log1p(bm25[best]),
        "bm25_standardised": float(standardised(bm25)[best]),
        "bm25_gap": math.log1p(bm25[best]) - math.log1p(runner_up),
        "information": math.log1p(signals.information),
        "length": math.log1p(len(signals.tokens)),
    }


def feature_names(dense: bool) -> frozenset[str]:
    """The scope model's inputs, as ``scope_features`` names them."""
    retrievers = {name: np.zeros(2) for name in RETRIEVERS} if dense else {"bm25": np.zeros(2)}
    return frozenset(scope_features(Signals((), retrievers, 0.0, 0.0 if dense else None, None), 0, 0.0, False))


def standardised(scores: np.ndarray) -> np.ndarray:
    """Scores as distances from the mean in standard deviations: retrievers become comparable
    whatever their scale (BM25 grows with the question; cosines of e5 sit between 0.7 and 1)."""
    spread = float(scores.std())
    return (scores - float(scores.mean())) / spread if spread > 1e-9 else np.zeros_like(scores)


def fuse(retrievers: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """One score per passage from the retrievers present (a missing one weighs nothing)."""
    present = [name for name in RETRIEVERS if name in retrievers]
    total = np.zeros(len(retrievers[present[0]]), dtype=np.float64)
    for name in present:
        total += weights.get(name, 0.0) * standardised(np.asarray(retrievers[name], dtype=np.float64))
    return total


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best passage numbers, best first (ties: the lower number). On words alone most
    passages share the lowest score (no word in common): when k others score above it, only they
    are looked at."""
    k = min(k, len(scores))
    if not k:
        return np.arange(0)
    candidates = np.flatnonzero(scores > scores.min())
    if len(candidates) < k:
        candidates = np.arange(len(scores))
    kth = np.partition(scores[candidates], len(candidates) - k)[len(candidates) - k]
    candidates = candidates[scores[candidates] >= kth]  # every score tied with the k-th stays in
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


def decide(fused: np.ndarray, ranked: np.ndarray, features: Mapping[str, float],
           calibration: Calibration, dense: bool) -> Decision:
    """Refuse under ``refuse_below``; ask which under ``answer_at`` or when the runner-up is as
    likely as the best; else answer with the best passage first. One rule stays beside the
    model: a question about a sibling product (花呗) that the passage never speaks of is refused,
    whatever the cosines say (e5 puts 花呗 and 借呗 close; a user does not)."""
    model = calibration.scope(dense)
    confidence = model.probability(features)
    scores = tuple(float(fused[i]) for i in ranked)
    if confidence < model.refuse_below or features.get("sibling"):
        outcome = Outcome.REFUSE
    elif confidence < model.answer_at or (dense and _close(scores, calibration.close)):
        outcome = Outcome.CLARIFY
    else:
        outcome = Outcome.ANSWER
    return Decision(outcome, tuple(int(i) for i in ranked), scores, confidence)


def _close(scores: tuple[float, ...], close: float) -> bool:
    """Whether the runner-up's softmax share is at least ``close`` times the best's."""
    return len(scores) > 1 and math.exp(scores[1] - scores[0]) >= close
