"""The dev-set floors of the pipeline issue (skipped where shared/eval is absent)."""

import pytest

from bot.evaluation import evaluate, load_cases

from conftest import SHARED

DEV = SHARED / "eval" / "dev.jsonl"


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set absent")
def test_dev_set_figures_meet_the_floors(faq):
    metrics = evaluate(load_cases(DEV), lambda q: faq.ask(q, 3))[0].as_dict()
    assert metrics["hit@1"] >= 0.85, metrics
    assert metrics["hit@3"] >= 0.95, metrics
    assert metrics["correct_abstention"] >= 0.85, metrics
    assert metrics["false_abstention"] <= 0.05, metrics
