"""The seed articles become clean question-and-answer passages; bad files fail loudly."""

import re
import shutil
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeError, load_knowledge, split_article

from conftest import KNOWLEDGE

SEEDS = sorted(KNOWLEDGE.glob("0*.txt"))
NOISE = ["图1", "图2", "用户内容法律责任告知", "站内文章", "作者:", "本文所有信息均为虚构", "民法典"]


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(KNOWLEDGE)


def test_no_passage_carries_site_noise(knowledge):
    for passage in knowledge.passages:
        text = passage.question + passage.answer
        assert not [n for n in NOISE if n in text], passage.id


def test_fiction_notice_is_kept_for_the_disclaimer(knowledge):
    assert any("虚构" in notice for notice in knowledge.notices)


def test_every_numbered_item_has_its_own_passage(knowledge):
    for seed in SEEDS:
        items = re.findall(r"^\d+\.\s*(\S+)\s*$", seed.read_text(encoding="utf-8"), flags=re.MULTILINE)
        assert items, seed.name
        own = [p for p in knowledge.passages if p.source == seed.name]
        for item in items:
            assert any(p.headings[-1].startswith(item) for p in own), (seed.name, item)


def test_headings_become_questions_and_the_title_leads_the_chain(knowledge):
    for seed in SEEDS:
        title = seed.read_text(encoding="utf-8").splitlines()[0].strip()
        own = [p for p in knowledge.passages if p.source == seed.name]
        assert all(p.headings[0] == title for p in own)
        assert any(len(p.headings) == 3 for p in own)


def test_a_passage_never_mixes_two_sections(knowledge):
    # each section heading line of an article appears only as a heading, never inside an answer
    headings = {h for p in knowledge.passages for h in p.headings}
    for passage in knowledge.passages:
        for line in passage.answer.splitlines():
            assert line not in headings, (passage.id, line)


def test_similar_questions_are_attached(knowledge):
    assert sum(len(p.similar) for p in knowledge.passages) > 50


def test_ids_survive_edits_elsewhere_in_the_file(tmp_path):
    seed = SEEDS[0]
    text = seed.read_text(encoding="utf-8")
    before = {p.headings: p.id for p in split_article(seed.name, text)[0]}
    lines = text.splitlines()
    edited = "\n".join(lines[:3] + ["这是一段新加入的说明文字，用来检验编号不受位置影响。"] + lines[3:])
    after = {p.headings: p.id for p in split_article(seed.name, edited)[0]}
    assert before == after


def test_gb18030_and_bom_articles_load(tmp_path):
    text = SEEDS[0].read_text(encoding="utf-8")
    (tmp_path / "a.txt").write_bytes(text.encode("gb18030"))
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    knowledge = load_knowledge(tmp_path)
    assert knowledge.encodings == {"a.txt": "gb18030", "b.txt": "utf-8-sig"}
    assert {p.answer for p in knowledge.passages if p.source == "a.txt"} == {
        p.answer for p in knowledge.passages if p.source == "b.txt"
    }


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("empty.txt", b"  \n\n", "empty.txt"),
        ("binary.txt", b"\x00\x01\x02PNG", "empty.txt".replace("empty", "binary")),
        ("cut.txt", "借呗额度异常\n第二行".encode("utf-8")[:-1] + b"\xe5\x80", "cut.txt"),
        ("qa.csv", "question,reply\n借呗是什么,一种贷款\n".encode("utf-8"), "qa.csv:1"),
        ("qa.jsonl", '{"question": "a", "answer": "b"}\n{not json\n'.encode("utf-8"), "qa.jsonl:2"),
    ],
)
def test_a_bad_file_stops_the_load_naming_it(tmp_path, name, content, where):
    shutil.copy(SEEDS[0], tmp_path)
    (tmp_path / name).write_bytes(content)
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(tmp_path)
    assert str(error.value).startswith(where)
    skipped = load_knowledge(tmp_path, skip_bad=True)
    assert skipped.passages and len(skipped.skipped) == 1 and name in skipped.skipped[0]


def test_a_folder_with_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("# 说明\n这里放文章。", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="no usable passage"):
        load_knowledge(tmp_path)


def test_curated_qa_files_become_passages(tmp_path):
    (tmp_path / "faq.csv").write_text('question,answer\n借呗怎么还款,"在支付宝里还, 按期"\n', encoding="utf-8")
    (tmp_path / "faq.jsonl").write_text('{"question": "借呗额度在哪看", "answer": "在借呗首页"}\n', encoding="utf-8")
    passages = load_knowledge(tmp_path).passages
    assert {(p.question, p.answer) for p in passages} == {
        ("借呗怎么还款", "在支付宝里还, 按期"), ("借呗额度在哪看", "在借呗首页")
    }


def test_similar_questions_naming_no_passage_are_an_error(tmp_path):
    shutil.copy(SEEDS[0], tmp_path)
    (tmp_path / "x.similar.txt").write_text("[不存在的标题]\n随便问问\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"x\.similar\.txt:1"):
        load_knowledge(tmp_path)
    (tmp_path / "x.similar.txt").write_text("[账户状态异常]\n有逾期还能升级吗\n", encoding="utf-8")
    passage = next(p for p in load_knowledge(tmp_path).passages if p.headings[-1] == "账户状态异常")
    assert passage.similar == ("有逾期还能升级吗",)
