"""Unanswered questions come back to the maintainer as work; ids never appear in clear."""

import json
import os
import random
import stat

import pytest

from bot import feedback
from bot.feedback import (LOG_FILE, Group, Pseudonymizer, QuestionLog, group_entries, load_salt, log_limits, read_log,
                          render_report)
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


def test_the_log_rotates_past_its_cap_keeping_the_newest_files(tmp_path):
    log = QuestionLog(tmp_path / LOG_FILE, Pseudonymizer(b"s"), max_bytes=2_000, files=3)
    for n in range(200):
        log.record("refused", n, f"借呗问题第{n}个", 1.0, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    assert all(p.stat().st_size <= 2_000 for p in tmp_path.iterdir())
    questions = [e["question"] for e in read_log(tmp_path / LOG_FILE, files=3)]
    assert questions == [f"借呗问题第{n}个" for n in range(200 - len(questions), 200)] and len(questions) > 20


def test_the_logs_cap_is_10_mb_times_5_unless_configured():
    assert log_limits({}) == (10_000_000, 5)
    assert log_limits({"FAQBOT_LOG_MAX_MB": "0.5", "FAQBOT_LOG_FILES": "2"}) == (500_000, 2)
    for setting, value in [("FAQBOT_LOG_MAX_MB", "0"), ("FAQBOT_LOG_MAX_MB", "ten"), ("FAQBOT_LOG_MAX_MB", "inf"),
                           ("FAQBOT_LOG_FILES", "0"), ("FAQBOT_LOG_FILES", "2.5")]:
        with pytest.raises(ValueError, match=setting):
            log_limits({setting: value})


def test_a_question_holding_line_separators_comes_back_whole(tmp_path):
    log = QuestionLog(tmp_path / LOG_FILE, Pseudonymizer(b"s"))
    odd = "借呗\u2028额度\x85没了\u2029怎么\x0b办\x0c\x1c\x1d\x1e"
    log.record("refused", 1, odd, 1.0, [])
    log.record("refused", 1, "借呗怎么注销", 1.0, [])
    assert [e["question"] for e in read_log(tmp_path / LOG_FILE)] == [odd, "借呗怎么注销"]


def test_the_report_shows_control_and_escape_characters_as_escapes():
    question = "\x1b[2J\x1b[31m借呗\x1b]0;title\x07注销\u202e\u2028\x85\x9b1m\r"
    report = render_report([Group(question, 1, 1, 0, 1, (question,))])
    assert not any(ch in report for ch in "\x1b\x07\u202e\u2028\x85\x9b\r")
    assert "\\x1b[31m借呗" in report and "\\u202e" in report and "\\u2028" in report


def test_the_log_and_the_salt_are_private_files(tmp_path, monkeypatch):
    monkeypatch.delenv("FAQBOT_LOG_SALT", raising=False)
    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    QuestionLog.default().record("refused", 1, "借呗怎么注销", 1.0, [])
    for name in (LOG_FILE, "salt"):
        assert stat.S_IMODE((tmp_path / "logs" / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700


def test_a_planted_link_as_salt_or_log_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("FAQBOT_LOG_SALT", raising=False)
    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"known-salt")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "salt").symlink_to(elsewhere)
    with pytest.raises(OSError, match="symbolic link"):
        load_salt(tmp_path / "logs")
    (tmp_path / "logs" / "salt").unlink()
    (tmp_path / "logs" / LOG_FILE).symlink_to(elsewhere)
    with pytest.raises(OSError, match="symbolic link"):
        QuestionLog.default()
    with pytest.raises(OSError):
        QuestionLog(tmp_path / "logs" / LOG_FILE, Pseudonymizer(b"s")).record("refused", 1, "借呗", 1.0, [])
    assert elsewhere.read_bytes() == b"known-salt"


def test_a_salt_or_log_of_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("FAQBOT_LOG_SALT", raising=False)
    (tmp_path / "salt").write_bytes(b"planted")
    QuestionLog(tmp_path / LOG_FILE, Pseudonymizer(b"s")).record("refused", 1, "借呗", 1.0, [])
    someone_else = os.getuid() + 1
    monkeypatch.setattr(feedback.os, "getuid", lambda: someone_else)
    with pytest.raises(OSError, match="not a regular file of this user"):
        load_salt(tmp_path)
    with pytest.raises(OSError, match="not a regular file of this user"):
        QuestionLog(tmp_path / LOG_FILE, Pseudonymizer(b"s")).record("refused", 1, "借呗", 1.0, [])


class Words:
    """A tokeniser of space-separated words: grouping on its own, fast and predictable."""

    @staticmethod
    def tokens(text: str) -> list[str]:
        return text.split()


def synthetic_log(count: int, seed: int = 7) -> list[dict]:
    """Questions of 2-6 words from a vocabulary where a few words are common (as 借呗 is)."""
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(2_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    return [{"question": " ".join(rng.choices(vocabulary, weights, k=rng.randint(2, 6))), "kind": "refused",
             "chat": str(rng.randint(1, 50))} for _ in range(count)]


def greedy_groups(entries: list[dict], tokenizer, threshold: float = 0.5) -> list[Group]:
    """The definition (and the old code): each entry joins the first group whose first entry it
    overlaps enough, comparing it with every group in turn."""
    clusters: list[tuple[set, list[dict]]] = []
    for entry in entries:
        words = set(tokenizer.tokens(entry["question"])) or {entry["question"].strip()}
        for centre, members in clusters:
            if len(words & centre) / len(words | centre) >= threshold:
                members.append(entry)
                break
        else:
            clusters.append((words, [entry]))
    return sorted((feedback.summarise(members) for _, members in clusters), key=lambda g: (-g.count, -g.chats, g.example))


def test_grouping_follows_the_greedy_rule_exactly():
    entries = synthetic_log(3_000) + [{"question": "   ", "kind": "downvote"}, {"question": "", "kind": "refused"}]
    assert group_entries(entries, Words()) == greedy_groups(entries, Words())


def test_the_report_compares_each_entry_with_few_groups_not_all(monkeypatch):
    compared = []
    original = feedback._first_similar

    def counting(words, prefix, centres, postings, threshold):
        class Counted:
            def __getitem__(self, n):
                compared.append(n)
                return centres[n]
        return original(words, prefix, Counted(), postings, threshold)

    monkeypatch.setattr(feedback, "_first_similar", counting)
    entries = synthetic_log(20_000)
    groups = len(group_entries(entries, Words()))
    every_group_before = groups * (groups - 1) // 2  # what each new group cost the old report, at least
    assert groups > 5_000 and len(compared) < every_group_before / 20
    assert len(compared) <= feedback.MAX_COMPARED * len(entries)


def test_a_changed_vote_counts_once_the_latest_of_each_voter_on_each_answer(tmp_path):
    path = tmp_path / LOG_FILE
    log = QuestionLog(path, Pseudonymizer(b"s"))
    votes = [("downvote", 1, 10, 100), ("upvote", 1, 10, 100),  # changed its mind: 👍 counts, in its place
             ("downvote", 1, 11, 100),  # another member of the group, on the same answer
             ("downvote", 1, 10, 101),  # the same voter, on another answer
             ("downvote", 2, 10, 100)]  # another chat, whose message 100 is another answer
    for kind, chat, voter, answer in votes:
        log.record(kind, chat, "借呗额度没了", 1.0, ["003#abc"], voter=voter, answer=answer)
    log.record("refused", 1, "借呗怎么注销", None, [])
    log.record("downvote", 1, "借呗额度没了", 1.0, ["003#abc"], voter=11, answer=100)  # the same 👎 pressed again
    entries = read_log(path, files=1)
    person = Pseudonymizer(b"s")
    assert [(e["kind"], e["chat"], e["voter"], e["answer"]) for e in entries if e["kind"] != "refused"] == [
        ("upvote", person(1), person(10), 100), ("downvote", person(1), person(10), 101),
        ("downvote", person(2), person(10), 100), ("downvote", person(1), person(11), 100)]
    assert [e["kind"] for e in entries].count("refused") == 1
    assert len(feedback.unanswered(entries)) == 4  # three 👎 that stand and the refusal


def test_votes_of_an_older_bot_without_voter_or_answer_each_count():
    old = [{"kind": "downvote", "chat": "a", "question": "借呗额度没了"}] * 2
    refused = {"kind": "refused", "chat": "a", "question": "借呗怎么注销"}
    assert feedback.latest_votes([*old, refused]) == [*old, refused]


def test_the_log_takes_every_kind_the_bot_writes_and_refuses_any_other(tmp_path):
    path = tmp_path / LOG_FILE
    log = QuestionLog(path, Pseudonymizer(b"s"))
    for kind in ("refuse", "Downvote", "", "thumbs_up"):
        with pytest.raises(ValueError, match="unknown log kind"):
            log.record(kind, 1, "借呗怎么注销", None, [])
    assert not path.exists()  # nothing half-written
    for n, kind in enumerate(feedback.KINDS):
        log.record(kind, 1, "借呗怎么注销", None, [], voter=1, answer=n)
    assert [e["kind"] for e in read_log(path, files=1)] == list(feedback.KINDS)
