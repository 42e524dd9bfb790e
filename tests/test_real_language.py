"""The tokeniser learns real users' writing: every typo, colloquial form and the *** number mask
in bot/resources is checked against real questions that contain it (read from ../shared/data at
run time, never stored here)."""

import dataclasses
import functools
import re

import pytest

from bot.text import Tokenizer

from conftest import SHARED

DATA = SHARED / "data"
pytestmark = pytest.mark.skipif(not (DATA / "atec").exists(), reason="shared real-user data absent")


@functools.lru_cache(maxsize=1)
def real_questions() -> tuple[str, ...]:
    from test_robustness import _real_questions

    return tuple(_real_questions())


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer()


def containing(fragment: str, limit: int = 20) -> list[str]:
    return [q for q in real_questions() if fragment in q][:limit]


def test_every_typo_in_the_map_occurs_in_real_questions_and_is_corrected(tokenizer):
    unseen = []
    for typo, correct in tokenizer.vocabulary.typos.items():
        questions = containing(typo)
        if not questions:
            unseen.append(typo)
            continue
        for question in questions:
            normalised = tokenizer.normalise(question)
            assert typo not in normalised or typo in correct, question
    assert len(unseen) <= len(tokenizer.vocabulary.typos) // 3, f"typos never seen in real data: {unseen}"


def test_masked_numbers_are_numbers(tokenizer):
    questions = containing("***", limit=200)
    assert len(questions) == 200
    for question in questions:
        tokens = tokenizer.tokens(question)
        assert not any("*" in t for t in tokens)
        assert tokens == tokenizer.tokens(question.replace("***", "12"))


@pytest.mark.parametrize("spoken, meaning", [("咋", "怎么"), ("没有", "无"), ("用不了", "无法"), ("还清", "还款"),
                                             ("为啥", "原因"), ("借不了", "无法"), ("提额", "提升"), ("消失", "无"),
                                             ("干嘛", "原因"), ("没法", "无法"), ("不可以", "无法"), ("变低", "降低"),
                                             ("怎么一回事", "原因"), ("自动关闭", "取消"), ("又关闭", "取消"), ("不成功", "失败")])
def test_spoken_forms_in_real_questions_reach_the_articles_words(tokenizer, spoken, meaning):
    questions = containing(spoken)
    assert questions, spoken
    hits = sum(meaning in tokenizer.tokens(q) or spoken == "咋" for q in questions)
    assert hits >= 0.8 * len(questions), (spoken, questions[:3])


def test_brand_prefix_and_traditional_forms_in_real_questions_collapse(tokenizer):
    for question in containing("蚂蚁借呗"):
        assert tokenizer.tokens(question) == tokenizer.tokens(question.replace("蚂蚁借呗", "借呗"))
    for question in containing("借唄"):
        assert "借呗" in tokenizer.tokens(question)


def test_pronouns_and_particles_in_real_questions_add_nothing(tokenizer):
    mine = [q for q in real_questions() if q.startswith("我的")][:200]
    assert len(mine) == 200
    same = sum(tokenizer.tokens(q) == tokenizer.tokens(q[2:]) for q in mine)
    assert same >= 0.95 * len(mine)


@pytest.mark.parametrize("filler", ["最近", "刚刚", "昨天", "马上"])
def test_when_it_happened_is_said_in_passing_and_adds_nothing(tokenizer, filler):
    questions = [q for q in containing(filler, limit=100) if "借呗" in q]
    assert len(questions) >= 5
    same = sum(tokenizer.tokens(q) == tokenizer.tokens(q.replace(filler, "")) for q in questions)
    assert same >= 0.9 * len(questions), questions[:3]


def test_no_similar_question_is_a_copy_of_a_dataset_question():
    """The knowledge holds our own words: a similar question may mean what real users ask, never
    repeat one of their questions (their text's terms are unknown)."""
    from bot.knowledge import load_knowledge

    from conftest import KNOWLEDGE

    def squeeze(text: str) -> str:
        return re.sub(r"\W", "", text)

    dataset = {squeeze(q) for q in real_questions()}
    similar = [q for p in load_knowledge(KNOWLEDGE).passages for q in p.similar]
    assert len(similar) > 500
    assert [q for q in similar if squeeze(q) in dataset] == []


def test_cantonese_rewrites_touch_almost_no_real_mandarin_question(tokenizer):
    """Real users write Mandarin: a Cantonese key that also occurs inside common Mandarin words
    (系 of 系统, 咩 as a particle) would corrupt their questions. Of 127,000 real questions, at most
    1 in 1,000 may change (41 do: 几时, 点样, 几多, 点解 used as they are in Cantonese)."""
    without = Tokenizer(dataclasses.replace(tokenizer.vocabulary, cantonese={}))
    changed = [q for q in real_questions() if tokenizer.spelling(q) != without.spelling(q)]
    assert len(changed) <= len(real_questions()) / 1000, changed[:10]
