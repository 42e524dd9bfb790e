"""The dev-set floors of the pipeline issue (skipped where shared/eval is absent)."""

import pytest

from bot.evaluation import evaluate, load_cases

from conftest import ROOT, SHARED

DEV = SHARED / "eval" / "dev.jsonl"


@pytest.mark.skipif(not DEV.exists(), reason="shared dev set absent")
def test_dev_set_figures_meet_the_floors(faq):
    """Guards what was measured (hit@1 0.861, hit@3 0.944, correct refusals 1.00, false 0.056)
    about a question below; the issue's floors (0.92, 0.97, 0.90, 0.03) are not all met yet."""
    metrics = evaluate(load_cases(DEV), lambda q: faq.ask(q, 3))[0].as_dict()
    assert metrics["hit@1"] >= 0.80, metrics
    assert metrics["hit@3"] >= 0.86, metrics
    assert metrics["correct_abstention"] >= 0.90, metrics
    assert metrics["false_abstention"] <= 0.06, metrics


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
def test_real_questions_measuring_half_meets_the_floors(faq):
    """The meaning issue's floors on the measuring half, all met: hit@1 ≥ 0.80 (measured 0.920),
    hit@3 ≥ 0.90 (0.962), correct refusals ≥ 0.88 (0.899), false refusals ≤ 0.08 (0.033)."""
    metrics = _measuring_half(faq, "real_labels.jsonl")
    assert metrics["hit@1"] >= 0.80, metrics
    assert metrics["hit@3"] >= 0.90, metrics
    assert metrics["correct_abstention"] >= 0.88, metrics
    assert metrics["false_abstention"] <= 0.08, metrics


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
def test_second_labellers_measuring_half_does_not_fall_back(faq):
    """Guards what was measured on someone else's labels (hit@1 0.58, correct refusals 0.85,
    false refusals 0.16 over 31 + 109 questions) with a few questions of margin; the issue's
    floors (0.65, 0.85, 0.12) are not all met yet."""
    metrics = _measuring_half(faq, "second_labels.jsonl")
    assert metrics["hit@1"] >= 0.48, metrics
    assert metrics["correct_abstention"] >= 0.80, metrics
    assert metrics["false_abstention"] <= 0.26, metrics


def test_english_and_cantonese_questions_written_by_someone_else_do_not_fall_back(faq):
    """Guards what was measured on 60 + 20 phone-style questions in English and written Cantonese
    by a writer who never saw the bot (hit@1 0.733, correct refusals 0.90, false refusals 0.117;
    before Cantonese was read in Mandarin words: 0.533, 1.00, 0.267), a few questions of margin."""
    cases = load_cases(ROOT / "tests" / "data" / "languages_questions.jsonl")
    metrics = evaluate(cases, lambda q: faq.ask(q, 3))[0].as_dict()
    assert metrics["hit@1"] >= 0.65, metrics
    assert metrics["correct_abstention"] >= 0.80, metrics
    assert metrics["false_abstention"] <= 0.15, metrics


def _measuring_half(faq, labels: str) -> dict:
    cases = load_cases(f"{ROOT / 'tests' / 'data' / labels}:measure")
    return evaluate(cases, lambda q: faq.ask(q, 3))[0].as_dict()


def test_calibration_learns_only_from_teaching_data():
    """Measuring halves, even held-out halves and measure-only files never teach: every file
    `faqbot calibrate` reads by default is a teaching half, an odd half or our own questions."""
    from bot.calibration import default_files
    from bot.evaluation import LABELLED_SETS, split_path

    specs = [split_path(spec) for spec in default_files()]
    assert all(half in ("teach", "odd") or path.name == "own_questions.jsonl" for path, half in specs)
    measure_only = {path for _, path, half in LABELLED_SETS if half is None}
    assert measure_only and not measure_only & {path for path, _ in specs}
    assert all(path.exists() for path, _ in specs)


def test_calibrate_without_options_reproduces_the_shipped_calibration(faq):
    """A maintainer who runs `faqbot calibrate` as the README says keeps the shipped strictness
    and data: the shipped file was made by exactly the default command."""
    from bot.calibration import _short, default_files
    from bot.config import MAX_FALSE_ANSWERS

    default = f"faqbot calibrate --max-false-answers {MAX_FALSE_ANSWERS} " + " ".join(map(_short, default_files()))
    assert faq.calibration.made_by == default
