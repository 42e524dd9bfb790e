"""The maintainer's loop: unanswered questions come back grouped by meaning, with the passage
they belong to or a topic to write, and as drafts a person uncomments."""

import json
import os
import shutil

import numpy as np
import pytest

from bot.feedback import Pseudonymizer, QuestionLog, read_log, within_days
from bot.knowledge import load_knowledge
from bot.suggest import average_linkage, render_drafts, render_suggestions, suggest

from conftest import KNOWLEDGE, run_faqbot

UPGRADE = ["借呗升级老失败咋回事", "为啥我借呗一直升级不成功", "借呗升级不了是啥原因呀"]  # a planted cluster
HUABEI = ["花呗怎么提额", "花呗能申请提额吗"]


def entry(question: str, kind: str = "refused", chat: str = "c1", shown=(), time="2026-11-30T10:00:00+0000") -> dict:
    return {"time": time, "kind": kind, "chat": chat, "question": question, "best_score": 1.0, "shown": list(shown)}


def planted_log() -> list[dict]:
    kinds = ["should_answer", "refused", "refused"]
    return ([entry(q, kind, f"c{n}") for n, (q, kind) in enumerate(zip(UPGRADE, kinds))]
            + [entry(q, "refused", "c9") for q in HUABEI] + [entry("今天天气怎么样")])


def group_of(result, question: str):
    return next(s for s in result.suggestions if question in (s.group.example, *s.group.variants))


def test_paraphrases_are_one_group_proposed_for_the_passage_they_ask_about(faq):
    result = suggest(faq, planted_log())
    upgrade = group_of(result, UPGRADE[0])
    assert {upgrade.group.example, *upgrade.group.variants} == set(UPGRADE)
    assert upgrade.group.count == 3 and upgrade.group.should_answer == 1 and upgrade.group.refused == 2
    assert upgrade.passage is not None and upgrade.passage.source.startswith("000_")
    assert "升级失败" in upgrade.passage.question and set(upgrade.drafts) == set(UPGRADE)
    assert result.suggestions[0] is upgrade  # most frequent first


def test_a_question_no_passage_covers_is_a_topic_to_write(faq):
    result = suggest(faq, planted_log())
    huabei = group_of(result, HUABEI[0])
    assert {huabei.group.example, *huabei.group.variants} == set(HUABEI)
    assert huabei.passage is None and huabei.drafts == ()
    assert "花呗" in huabei.topic
    assert group_of(result, "今天天气怎么样").passage is None
    assert f"已按不答话题 [{huabei.topic}] 回复" in render_suggestions(result)  # already refused with its topic's reply


def test_a_passage_users_rejected_is_not_proposed_again(faq):
    first = group_of(suggest(faq, planted_log()), UPGRADE[0]).passage
    rejected = [entry(q, "none_of_these", f"c{n}", shown=[first.id]) for n, q in enumerate(UPGRADE)]
    again = group_of(suggest(faq, rejected), UPGRADE[0])
    assert again.passage is None or again.passage.id != first.id


def test_clarification_taps_are_drafts_for_the_passage_picked(faq):
    picked = faq.knowledge.passages[-1]
    taps = [entry("额度还了咋不恢复", "clarify_pick", "c1", shown=[picked.id]),
            entry("额度还了咋不恢复", "clarify_pick", "c2", shown=[picked.id]),
            entry("借呗没额度了", "clarify_pick", "c3", shown=["no-such-passage"])]
    result = suggest(faq, taps)
    assert result.suggestions == ()  # a tap is an answer found, not an unanswered question
    assert [(t.passage.id, t.drafts, t.count) for t in result.taps] == [(picked.id, ("额度还了咋不恢复",), 2)]


def uncomment_drafts(text: str) -> str:
    """What a maintainer does who agrees with every draft: the commented questions under each
    ``[passage]`` line are uncommented."""
    lines, in_block = [], False
    for line in text.splitlines():
        in_block = line.startswith("[") or (in_block and bool(line.strip()))
        lines.append(line[2:] if in_block and line.startswith("# ") else line)
    return "\n".join(lines) + "\n"


def test_drafts_load_as_they_are_and_join_their_passage_once_uncommented(faq, tmp_path):
    tapped = faq.knowledge.passages[-1]
    drafts = render_drafts(suggest(faq, planted_log() + [entry("额度还了咋不恢复", "clarify_pick", shown=[tapped.id])]))
    folder = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, folder, ignore=shutil.ignore_patterns("vectors.npz"))
    before = {p.id: p.similar for p in load_knowledge(folder).passages}
    (folder / "drafts.similar.txt").write_text(drafts, encoding="utf-8")
    assert {p.id: p.similar for p in load_knowledge(folder).passages} == before  # as written, nothing is added
    (folder / "drafts.similar.txt").write_text(uncomment_drafts(drafts), encoding="utf-8")
    after = {p.id: p.similar for p in load_knowledge(folder).passages}
    added = {pid: set(after[pid]) - set(before[pid]) for pid in after if after[pid] != before[pid]}
    upgrade = group_of(suggest(faq, planted_log()), UPGRADE[0]).passage
    assert added == {upgrade.id: set(UPGRADE), tapped.id: {"额度还了咋不恢复"}}
    assert "花呗怎么提额" in drafts and "花呗怎么提额" not in {q for qs in added.values() for q in qs}


def test_average_linkage_merges_near_rows_and_keeps_far_ones_apart():
    rng = np.random.default_rng(3)
    centres = np.eye(4)[:3]
    rows = np.concatenate([centre + 0.05 * rng.standard_normal((5, 4)) for centre in centres])
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    clusters = average_linkage(rows, 0.5)
    assert sorted(sorted(c) for c in clusters) == [list(range(0, 5)), list(range(5, 10)), list(range(10, 15))]
    assert len(average_linkage(rows, 0.9999)) == 15


def test_only_the_last_days_are_kept_and_undated_entries_dropped():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    entries = [entry("新", time="2026-11-28T10:00:00+0000"), entry("旧", time="2026-11-01T10:00:00+0000"),
               entry("坏", time="yesterday")]
    assert [e["question"] for e in within_days(entries, 7, now)] == ["新"]


def test_faqbot_report_suggest_writes_private_drafts_and_never_prints_a_chat(tmp_path):
    path = tmp_path / "log.jsonl"
    log = QuestionLog(path, Pseudonymizer(b"salt"))
    for n, question in enumerate(UPGRADE + ["借呗\x1b[2J升级失败怎么办\u202e"]):
        log.record("refused", 424242 + n, question, 1.0, [])
    out = tmp_path / "drafts.similar.txt"
    result = run_faqbot("report", "--suggest", "--log", str(path), "--write", str(out))
    assert result.returncode == 0, result.stderr
    hashes = {e["chat"] for e in read_log(path)}
    assert not any(h in result.stdout or h in out.read_text(encoding="utf-8") for h in hashes)
    assert "424242" not in result.stdout
    assert "\x1b" not in result.stdout and "\\x1b" in result.stdout and "\\u202e" in result.stdout
    assert "作为相似问加到" in result.stdout
    text = out.read_text(encoding="utf-8")
    assert oct(os.stat(out).st_mode & 0o777) == "0o600" and "\x1b" not in text
    assert any(line == f"# {UPGRADE[0]}" for line in text.splitlines())
    again = run_faqbot("report", "--suggest", "--log", str(path), "--write", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr and not again.stdout  # said before the work
    assert out.read_text(encoding="utf-8") == text  # the maintainer's file is never overwritten


def test_report_without_suggest_leaves_out_taps_and_counts_every_kind(tmp_path):
    path = tmp_path / "log.jsonl"
    lines = [entry("借呗怎么注销", "refused"), entry("怎么注销借呗", "none_of_these"), entry("借呗如何注销", "should_answer"),
             entry("借呗额度", "clarify_pick", shown=["x"])]
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    result = run_faqbot("report", "--log", str(path))
    assert result.returncode == 0
    first = result.stdout.splitlines()[1].split()
    assert first[:6] == ["3", "1", "0", "1", "1", "1"] and "借呗额度" not in result.stdout
    bad = run_faqbot("report", "--log", str(path), "--days", "0")
    assert bad.returncode == 2 and "--days" in bad.stderr


@pytest.mark.parametrize("count", [1, 0])
def test_an_empty_or_tiny_log_is_reported_plainly(faq, count):
    result = suggest(faq, [entry("借呗升级失败咋办")] * count)
    assert len(result.suggestions) == count
    assert render_suggestions(result)


def test_the_admins_report_is_the_largest_recent_groups_in_a_few_lines(faq, tmp_path):
    from datetime import datetime, timedelta, timezone

    from bot.suggest import recent_report

    now = datetime.now(timezone.utc)
    recent, old = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S%z"), (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S%z")
    lines = [entry(q, chat=f"c{n}", time=recent) for n, q in enumerate(UPGRADE)] + [entry("花呗怎么提额", time=old)]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    text = recent_report(faq, path)
    assert text.startswith("1. ") and "3 次，3 个会话" in text and "升级失败" in text
    assert "花呗" not in text and "c1" not in text  # 30 days ago; no chat
    assert recent_report(faq, tmp_path / "missing.jsonl") == "这段时间没有未回答或被点踩的问题。"
