"""Any input gets an answer and loses nothing: property tests, every real question, huge files."""

import json
import random
from collections import Counter

import numpy as np

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.knowledge import KnowledgeError, MAX_FILE_BYTES, load_knowledge
from bot.search import LAST_SENTENCE_CHARS
from bot.text import MAX_QUESTION_CHARS

from conftest import CONTRACT_KEYS, SHARED, run_faqbot

NASTY = [
    "", " ", "\t", "？？？", "!!!", "🤔💸❓", "😀" * 50, "的了吗呢吧", "<b>借呗</b>", "&amp;&lt;", "[借呗](http://x)",
    "*借呗*", "'; DROP TABLE passages; --", "$(rm -rf /)", "`reboot`", "%s%s%n", "\\x00", "\u202e借呗", "\ufeff借呗",
    "借" * 100_000, "a" * 100_000, "\x1b[31m借呗\x1b[0m", "null", "{}", "[]", "NaN",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_any_text_gets_an_answer(faq, text):
    answer = faq.ask(text)
    assert answer.disclaimer
    assert answer.answered == bool(answer.hits)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)))
def test_any_code_point_including_lone_surrogates_gets_an_answer(faq, text):
    assert faq.ask(text).disclaimer


def test_batch_mode_one_json_line_per_input_line_whatever_comes_in():
    lines = [line.replace("\n", " ").replace("\r", " ") for line in NASTY]
    raw = ("\n".join(lines) + "\n").encode("utf-8") + b"\xff\xfe broken utf-8 \xed\xa0\x80\n"
    from conftest import ROOT
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "bot", "ask", "--json", "-"], input=raw, capture_output=True,
                            cwd=ROOT, env={**os.environ}, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode("utf-8").splitlines()
    assert len(out) == len(lines) + 1
    for line in out:
        answer = json.loads(line)
        assert set(answer) == CONTRACT_KEYS


def _real_questions() -> list[str]:
    import csv

    data = SHARED / "data"
    questions = set()
    for line in (data / "atec" / "atec_nlp_sim_train.csv").read_text(encoding="utf-8-sig").splitlines():
        fields = line.replace("\ufeff", "").split("\t")
        questions.update(fields[1:3])
    with (data / "afqmc" / "train.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            questions.update((row["sentence1"], row["sentence2"]))
    for name in ("dev.json", "test.json"):
        for line in (data / "afqmc" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            questions.update((row["sentence1"], row["sentence2"]))
    return sorted(q.replace("\r", " ").replace("\n", " ") for q in questions)


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
@pytest.mark.parametrize("mode, sample", [("--lexical", 20_000), ("--top-k=3", 500)])
def test_real_user_questions_go_through_batch_mode_in_one_process(mode, sample):
    """A fixed sample of the 127,000 real questions on words alone, a smaller one with the encoder
    (all of them would take minutes of a busy 2-core CI machine; benchmarks/ reads them all)."""
    questions = _real_questions()
    assert len(questions) > 100_000
    questions = random.Random(7).sample(questions, sample)
    result = run_faqbot("ask", "--json", mode, "-", stdin="\n".join(questions) + "\n", timeout=3600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.splitlines()
    assert len(out) == len(questions)
    answered = sum(json.loads(line)["answered"] for line in out)
    assert 0 < answered < len(questions)


def test_a_50_mb_file_is_refused_with_its_name(tmp_path):
    (tmp_path / "huge.txt").write_bytes(b"a" * 50_000_000)
    (tmp_path / "ok.jsonl").write_text('{"question": "借呗是什么", "answer": "一种信用贷款。"}\n', encoding="utf-8")
    assert MAX_FILE_BYTES < 50_000_000
    with pytest.raises(KnowledgeError, match="huge.txt"):
        load_knowledge(tmp_path)
    knowledge = load_knowledge(tmp_path, skip_bad=True)
    assert len(knowledge.passages) == 1 and "huge.txt" in knowledge.skipped[0]


# Bounded cost: counted, never timed (benchmarks/worst_case.py times the shapes against the median).

class _Word(str):
    """A question word that counts how often another word is looked for inside it."""

    looked_inside = 0

    def __contains__(self, other: object) -> bool:
        _Word.looked_inside += 1
        return super().__contains__(other)


def test_many_unknown_words_are_weighed_in_one_pass_not_against_each_other(faq, monkeypatch):
    index = faq.index
    words = [_Word(chr(0x4E00 + 37 * n % 20_000) * 2) for n in range(400)]
    words = [w for w in words if w not in index.engine.idf][:300]
    looked_at = Counter()
    parts = index.tokenizer.parts
    monkeypatch.setattr(index.tokenizer, "parts", lambda word: looked_at.update([word]) or parts(word))
    _Word.looked_inside = 0
    assert index.information(set(words)) == pytest.approx(len(words) * index.unknown_weight)
    assert _Word.looked_inside <= len(words)  # the old scan looked for each word inside every other: 300 × 299
    assert set(looked_at.values()) == {1} and len(looked_at) == len(words)


def test_a_word_asked_a_hundred_times_reads_its_postings_once(faq, monkeypatch):
    engine = faq.index.engine
    reads = Counter()

    class Postings(dict):
        def __getitem__(self, word):
            reads[word] += 1
            return super().__getitem__(word)

    monkeypatch.setattr(engine, "postings", Postings(engine.postings))
    assert {"借呗", "额度"} <= set(engine.postings)
    once = engine.matched(["借呗", "额度"])
    reads.clear()
    many = engine.matched(["借呗"] * 100 + ["额度"] * 100)
    assert reads == {"借呗": 1, "额度": 1}
    assert np.allclose(many, 100 * once, rtol=1e-5)  # and it still counts a hundred times, as rank-bm25 does


def test_a_story_is_read_once_and_its_last_words_again_however_long_it_is(faq, monkeypatch):
    segmenter = faq.index.tokenizer._jieba
    seen = []
    cut = segmenter.cut
    monkeypatch.setattr(segmenter, "cut", lambda text, **options: seen.append(text) or cut(text, **options))
    story = "借呗额度" * 100 + "。" + "借呗额度" * 100 + "，我想问花呗怎么开通？"  # the core reads 1,000 characters
    tokens = faq.index.question_tokens(story)
    assert sum(map(len, seen)) <= MAX_QUESTION_CHARS + LAST_SENTENCE_CHARS
    assert "花呗" in tokens  # what is asked at the end is heard, though the start fills the read
