"""The dev-set floors of the pipeline issue (skipped where shared/eval is absent)."""

import pytest

from bot.evaluation import evaluate, load_cases

from conftest import ROOT, SHARED

DEV = SHARED / "eval" / "dev.jsonl"


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set absent")
def test_dev_set_figures_meet_the_floors(faq):
    metrics = evaluate(load_cases(DEV), lambda q: faq.ask(q, 3))[0].as_dict()
    assert metrics["hit@1"] >= 0.85, metrics
    assert metrics["hit@3"] >= 0.95, metrics
    assert metrics["correct_abstention"] >= 0.84, metrics
    assert metrics["false_abstention"] <= 0.05, metrics


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
def test_real_questions_measuring_half_meets_the_floors(faq):
    """The issue's floors on the measuring half: hit@1 ≥ 0.60, correct refusals ≥ 0.85 (measured
    0.861, three questions of margin), false refusals ≤ 0.15."""
    metrics = _measuring_half(faq, "real_labels.jsonl")
    assert metrics["hit@1"] >= 0.60, metrics
    assert metrics["correct_abstention"] >= 0.85, metrics
    assert metrics["false_abstention"] <= 0.15, metrics


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
def test_second_labellers_measuring_half_does_not_fall_back(faq):
    """No floor was set for someone else's labels; these guard what was measured (hit@1 0.45,
    correct refusals 0.84, false refusals 0.23 over 31 + 109 questions) with a few questions of
    margin, so a change that loses ground there is seen."""
    metrics = _measuring_half(faq, "second_labels.jsonl")
    assert metrics["hit@1"] >= 0.35, metrics
    assert metrics["correct_abstention"] >= 0.80, metrics
    assert metrics["false_abstention"] <= 0.33, metrics


def _measuring_half(faq, labels: str) -> dict:
    from bot.evaluation import load_real_cases

    cases = load_real_cases("measure", ROOT / "tests" / "data" / labels, SHARED / "data")
    return evaluate(cases, lambda q: faq.ask(q, 3))[0].as_dict()
