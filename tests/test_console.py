"""The console front end hands the core a composed question: a character that NFKC multiplies
(U+FDFA is eighteen) is answered like any other text, never a crash of the whole process."""

import json

from conftest import run_faqbot

EXPANDING = "\ufdfa" * 1000  # ﷺ: one character, eighteen once composed


def test_a_question_that_composition_multiplies_gets_an_answer_in_one_shot_mode():
    result = run_faqbot("ask", "--json", EXPANDING)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert answer["question"] == EXPANDING and answer["disclaimer"]


def test_a_question_that_composition_multiplies_gets_an_answer_in_batch_mode():
    lines = ["借呗升级失败怎么办", "\ufdfa" * 40, "\u3300" * 600, "借呗额度异常"]
    result = run_faqbot("ask", "--json", "-", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == lines
    assert answers[0]["answered"] and answers[3]["answered"]


def test_a_planted_history_link_is_neither_read_nor_overwritten(tmp_path, monkeypatch):
    import atexit

    from bot import console

    target = tmp_path / "precious.txt"
    target.write_text("不能被覆盖的内容\n", encoding="utf-8")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "console_history").symlink_to(target)
    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    saved = []
    monkeypatch.setattr(atexit, "register", saved.append)
    console._enable_line_editing()
    for save in saved:
        save()
    assert target.read_text(encoding="utf-8") == "不能被覆盖的内容\n"


def test_the_history_is_kept_private(tmp_path, monkeypatch):
    import atexit
    import stat

    from bot import console

    monkeypatch.setenv("FAQBOT_LOG_DIR", str(tmp_path / "logs"))
    saved = []
    monkeypatch.setattr(atexit, "register", saved.append)
    console._enable_line_editing()
    for save in saved:
        save()
    assert stat.S_IMODE((tmp_path / "logs" / "console_history").stat().st_mode) == 0o600
