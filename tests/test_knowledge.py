"""The seed articles become clean question-and-answer passages; bad files fail loudly."""

import json
import os
import re
import shutil

import pytest

from bot import knowledge as knowledge_module
from bot.knowledge import FileLimits, KnowledgeError, load_knowledge, read_bytes, split_article

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
    before = {p.headings: p.id for p in split_article(seed.name, text).passages}
    lines = text.splitlines()
    edited = "\n".join(lines[:3] + ["这是一段新加入的说明文字，用来检验编号不受位置影响。"] + lines[3:])
    after = {p.headings: p.id for p in split_article(seed.name, edited).passages}
    assert before == after


def test_gb18030_and_bom_articles_load(tmp_path):
    text = SEEDS[0].read_text(encoding="utf-8")
    (tmp_path / "a.txt").write_bytes(text.encode("gb18030"))
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (tmp_path / "c.txt").write_bytes(text.encode("utf-16"))  # with its byte-order mark, as Windows Notepad saves it
    knowledge = load_knowledge(tmp_path)
    assert knowledge.encodings == {"a.txt": "gb18030", "b.txt": "utf-8-sig", "c.txt": "utf-16"}
    answers = [{p.answer for p in knowledge.passages if p.source == name} for name in ("a.txt", "b.txt", "c.txt")]
    assert answers[0] and answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize(
    "name, content, where",
    [
        ("empty.txt", b"  \n\n", "empty.txt"),
        ("binary.txt", b"\x00\x01\x02PNG", "empty.txt".replace("empty", "binary")),
        ("cut.txt", "借呗额度异常\n第二行".encode("utf-8")[:-1] + b"\xe5\x80", "cut.txt"),
        ("qa.csv", "question,reply\n借呗是什么,一种贷款\n".encode("utf-8"), "qa.csv:1"),
        ("qa.jsonl", '{"question": "a", "answer": "b"}\n{not json\n'.encode("utf-8"), "qa.jsonl:2"),
        ("commas.csv", "question,answer\n借呗是什么,一种贷款\n借呗怎么关闭,打开借呗,点设置\n".encode("utf-8"), "commas.csv:3"),
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
    (tmp_path / "x.similar.txt").write_text("[账户状态的异常]\n随便问问\n[账户状态异常]\n有逾期还能升级吗\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"x\.similar\.txt:1: .*did you mean \[账户状态异常\]"):
        load_knowledge(tmp_path)
    skipping = load_knowledge(tmp_path, skip_bad=True)  # only the bad key's questions are left out
    assert len(skipping.skipped) == 1 and "账户状态的异常" in skipping.skipped[0]
    assert next(p for p in skipping.passages if p.headings[-1] == "账户状态异常").similar == ("有逾期还能升级吗",)
    (tmp_path / "x.similar.txt").write_text("[账户状态异常]\n有逾期还能升级吗\n", encoding="utf-8")
    passage = next(p for p in load_knowledge(tmp_path).passages if p.headings[-1] == "账户状态异常")
    assert passage.similar == ("有逾期还能升级吗",)


def test_an_faq_article_whose_headings_ask_gets_a_passage_per_question():
    article = split_article("faq.txt", "借呗常见问题\n借呗的还款日可以修改吗？\n不可以，以借款时约定为准。\n"
                                       "Can I repay early?\n可以，在借呗页面选择提前还款。\n")
    assert [(p.headings[-1], p.answer) for p in article.passages] == [
        ("借呗的还款日可以修改吗？", "不可以，以借款时约定为准。"), ("Can I repay early?", "可以，在借呗页面选择提前还款。")]


def test_what_a_maintainer_may_not_mean_is_said_naming_the_file(tmp_path, caplog):
    (tmp_path / "faq.txt").write_text("借呗逾期问题\n逾期一天有影响吗\n会产生少量罚息\n还款日能改吗\n还款日以借款时约定为准，不能修改。\n",
                                      encoding="utf-8")
    (tmp_path / "mine.unanswered.txt").write_text("[彩票]\n> 不回答彩票问题。\n借呗能买彩票吗\n", encoding="utf-8")
    (tmp_path / "mine.similiar.txt").write_text("[还款日能改吗]\n还款日可以换吗\n", encoding="utf-8")
    (tmp_path / "mine.similar.txt").write_text("[还款日能改吗]\n还款日能往后推吗\n", encoding="utf-8")
    (tmp_path / "mine.unanswerable.txt").write_text("[还款]\n> 请问客服。\n还款日能往后推吗\n", encoding="utf-8")
    knowledge = load_knowledge(tmp_path)
    warnings = "\n".join(knowledge.warnings)
    assert "faq.txt: 「逾期一天有影响吗」" in warnings and "「会产生少量罚息」" in warnings  # a one-line answer without 。
    assert "「还款日能改吗」" not in warnings
    assert "mine.unanswered.txt: read as an article; did you mean .unanswerable.txt?" in warnings
    assert "mine.similiar.txt: read as an article; did you mean .similar.txt?" in warnings
    assert "「还款日能往后推吗」 is both a similar question of [还款日能改吗] and an out-of-scope example of [还款]" in warnings
    assert all(warning in caplog.text for warning in knowledge.warnings)
    assert not load_knowledge(KNOWLEDGE).warnings


def test_a_link_that_leaves_the_folder_is_refused_naming_it(tmp_path):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    shutil.copy(SEEDS[0], folder)
    secret = tmp_path / "os-release"
    secret.write_text("PRETTY_NAME=\"Secret Linux\"\nID=secret\n", encoding="utf-8")
    (folder / "release.txt").symlink_to(secret)
    (folder / "again.txt").symlink_to(folder / SEEDS[0].name)  # a link that stays inside is fine
    with pytest.raises(KnowledgeError, match=r"^release\.txt: a link to a file outside the knowledge folder"):
        load_knowledge(folder)
    knowledge = load_knowledge(folder, skip_bad=True)
    assert len(knowledge.skipped) == 1 and "release.txt" in knowledge.skipped[0]
    assert not [p for p in knowledge.passages if "Secret" in p.answer + p.question]
    assert {p.source for p in knowledge.passages} == {SEEDS[0].name, "again.txt"}


def test_a_large_qa_file_of_100000_entries_loads_as_one_file(tmp_path):
    rows = [json.dumps({"question": f"借呗第{n}号问题是什么情况呢", "answer": f"这是第{n}号问题的回答，" + "内容" * 30},
                       ensure_ascii=False) for n in range(100_000)]
    (tmp_path / "corpus.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert (tmp_path / "corpus.jsonl").stat().st_size > 12_000_000
    assert len(load_knowledge(tmp_path).passages) == 100_000


def test_each_kind_has_its_size_limit_and_the_limits_can_be_set(tmp_path, monkeypatch):
    assert FileLimits() == FileLimits.from_env({}) == FileLimits(5_000_000, 200_000_000)
    assert FileLimits.from_env({"FAQBOT_MAX_FILE_MB": "50"}) == FileLimits(50_000_000, 50_000_000)
    assert FileLimits.from_env({"FAQBOT_MAX_FILE_MB": "1,500"}) == FileLimits(1_000_000, 500_000_000)
    for bad in ("0", "-1", "big", "1,2,3", "inf"):
        with pytest.raises(ValueError, match="FAQBOT_MAX_FILE_MB"):
            FileLimits.from_env({"FAQBOT_MAX_FILE_MB": bad})
    shutil.copy(SEEDS[0], tmp_path)
    with (tmp_path / "sparse.jsonl").open("wb") as handle:
        handle.truncate(500_000_000)  # 500 MB that take no room: refused from its size alone
    with pytest.raises(KnowledgeError, match=r"^sparse\.jsonl: file too large \(500,000,000 bytes; limit 200,000,000"):
        load_knowledge(tmp_path)
    monkeypatch.setenv("FAQBOT_MAX_FILE_MB", "0.001,600")
    with pytest.raises(KnowledgeError, match=rf"^{re.escape(SEEDS[0].name)}: file too large"):
        load_knowledge(tmp_path)


def test_a_file_that_is_not_a_regular_file_is_never_waited_on(tmp_path):
    shutil.copy(SEEDS[0], tmp_path)
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(KnowledgeError, match=r"^pipe\.txt: not a regular file"):
        read_bytes(tmp_path / "pipe.txt")
    assert {p.source for p in load_knowledge(tmp_path).passages} == {SEEDS[0].name}


def test_duplicate_ids_are_made_unique_in_reading_order_with_a_warning_naming_both(tmp_path, caplog):
    (tmp_path / "faq.jsonl").write_text(
        '{"question": "借呗怎么还款", "answer": "在支付宝里还。"}\n{"question": "借呗怎么还款", "answer": "按期自动扣款。"}\n',
        encoding="utf-8")
    text = SEEDS[0].read_text(encoding="utf-8")
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "a.md").write_text(text, encoding="utf-8")  # the same stem: the same ids
    knowledge = load_knowledge(tmp_path)
    ids = [p.id for p in knowledge.passages]
    assert len(set(ids)) == len(ids)
    first, second = (p for p in knowledge.passages if p.source == "faq.jsonl")
    assert second.id == first.id + "-2"
    assert any("faq.jsonl" in w and first.id in w and second.id in w for w in knowledge.warnings)
    assert any("a.txt" in w and "a.md" in w for w in knowledge.warnings)
    assert [p.id for p in load_knowledge(tmp_path).passages] == ids
    assert knowledge.warnings[0] in caplog.text
    (tmp_path / "x.similar.txt").write_text(f"[{second.id}]\n借呗自动扣款吗\n", encoding="utf-8")
    attached = next(p for p in load_knowledge(tmp_path).passages if p.id == second.id)
    assert attached.similar == ("借呗自动扣款吗",)


def test_the_digest_is_of_the_bytes_that_were_parsed(tmp_path, monkeypatch):
    shutil.copy(SEEDS[0], tmp_path)
    article = tmp_path / SEEDS[0].name
    before = load_knowledge(tmp_path).digest
    assert before == load_knowledge(tmp_path).digest
    original_read = knowledge_module.read_bytes

    def edited_while_read(path, limit):
        data = original_read(path, limit)
        path.write_text(data.decode("utf-8") + "\n补充说明\n借呗账单显示延迟时请稍后刷新页面再查看。\n", encoding="utf-8")
        return data

    monkeypatch.setattr(knowledge_module, "read_bytes", edited_while_read)
    during = load_knowledge(tmp_path)
    monkeypatch.undo()
    assert during.digest == before  # what was parsed is the old text: so is the key
    assert "刷新页面" not in "".join(p.answer for p in during.passages)
    after = load_knowledge(tmp_path)
    assert after.digest != before and "刷新页面" in "".join(p.answer for p in after.passages)
    assert article.read_text(encoding="utf-8").endswith("再查看。\n")
