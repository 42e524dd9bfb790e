"""Unanswered questions come back to the maintainer as work; ids never appear in clear."""

import json
import os

from bot.feedback import Pseudonymizer, QuestionLog, group_entries, load_salt, read_log, render_report
from bot.text import Tokenizer

from conftest import run_faqbot


def test_refusals_and_downvotes_are_logged_with_hashed_chats_only(tmp_path):
    log = QuestionLog(tmp_path / "unanswered.jsonl", Pseudonymizer(b"pepper"))
    log.record("refused", 123456789, "借呗怎么注销", 3.2, [])
    log.record("downvote", 123456789, "借呗额度没了", 20.5, ["003#abc"])
    text = (tmp_path / "unanswered.jsonl").read_text(encoding="utf-8")
    assert "123456789" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [e["kind"] for e in entries] == ["refused", "downvote"]
    assert entries[0]["chat"] == entries[1]["chat"] == Pseudonymizer(b"pepper")(123456789)
    assert Pseudonymizer(b"other")(123456789) != entries[0]["chat"]


def test_the_salt_is_made_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("FAQBOT_LOG_SALT", raising=False)
    first = load_salt(tmp_path)
    assert load_salt(tmp_path) == first and len(first) >= 32
    assert oct(os.stat(tmp_path / "salt").st_mode & 0o777) == "0o600"
    monkeypatch.setenv("FAQBOT_LOG_SALT", "from-env")
    assert load_salt(tmp_path) == b"from-env"


def test_report_groups_similar_wording_most_frequent_first(tmp_path):
    log = QuestionLog(tmp_path / "log.jsonl", Pseudonymizer(b"s"))
    for chat, question in [(1, "借呗怎么注销"), (2, "怎么注销借呗"), (3, "借呗如何注销啊"), (1, "花呗免息期多长"), (4, "借呗利息多少")]:
        log.record("refused", chat, question, 1.0, [])
    (tmp_path / "log.jsonl").open("a").write("{broken line\n")
    groups = group_entries(read_log(tmp_path / "log.jsonl"), Tokenizer())
    assert groups[0].count == 3 and groups[0].chats == 3 and "注销" in groups[0].example
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
    assert "注销" in render_report(groups).splitlines()[1]


def test_faqbot_report_prints_the_groups(tmp_path):
    log = QuestionLog(tmp_path / "log.jsonl", Pseudonymizer(b"s"))
    for question in ["借呗怎么注销", "怎么注销借呗", "花呗免息期多长"]:
        log.record("refused", 7, question, 0.5, [])
    result = run_faqbot("report", "--log", str(tmp_path / "log.jsonl"))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "注销" in lines[1] and lines[1].split()[0] == "2"
