"""The command line as users and scripts meet it: faqbot, ask, ask --json, eval, bad knowledge."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONTRACT_KEYS, KNOWLEDGE, ROOT, SHARED, run_faqbot

RESULT_KEYS = {"id", "question", "answer", "source", "score"}


def test_ask_prints_what_the_console_shows_short_with_the_article_as_source():
    result = run_faqbot("ask", "借呗升级失败怎么办")
    assert result.returncode == 0, result.stderr
    assert "来源：借呗升级失败对企业融资与个人信贷的影响及应对策略" in result.stdout
    assert ".txt" not in result.stdout and "仅供参考" in result.stdout and "猜你想问" in result.stdout
    assert len(result.stdout) <= 900 and "\x1b" not in result.stdout  # piped: no colours


def test_ask_full_prints_the_whole_passage():
    best = json.loads(run_faqbot("ask", "--json", "借呗升级失败怎么办").stdout)["results"][0]["answer"]
    short, full = run_faqbot("ask", "借呗升级失败怎么办").stdout, run_faqbot("ask", "--full", "借呗升级失败怎么办").stdout
    assert best in full and best not in short and len(full) > len(short)


def test_ask_json_follows_the_contract():
    result = run_faqbot("ask", "--json", "借呗分期还完了为什么没有额度")
    answer = json.loads(result.stdout)
    assert set(answer) == CONTRACT_KEYS and answer["answered"] is True
    assert answer["results"] and all(set(r) == RESULT_KEYS for r in answer["results"])
    scores = [r["score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    assert answer["results"][0]["source"] == "003_e93a62a378bb2d47.txt"


def test_batch_mode_prints_one_object_per_line_in_order_whatever_comes_in():
    lines = ["借呗升级失败怎么办", "", "   ", "🤔🤔", "x" * 100_000, "<script>alert(1)</script>", "'; DROP TABLE faq; --", "借唄額度異常"]
    result = run_faqbot("ask", "--json", "-", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == lines
    assert answers[1] == {**answers[1], "answered": False, "results": []}
    assert answers[0]["answered"] and answers[-1]["answered"]


def test_the_top_k_flag_limits_results():
    answer = json.loads(run_faqbot("ask", "--json", "--top-k", "1", "借呗升级失败").stdout)
    assert len(answer["results"]) == 1


def test_knowledge_folder_from_flag_and_environment(tmp_path):
    (tmp_path / "faq.jsonl").write_text('{"question": "借呗怎么提前还款", "answer": "在借呗页面选择提前还款。"}\n', encoding="utf-8")
    for args, env in [(("--knowledge", str(tmp_path)), {}), ((), {"FAQBOT_KNOWLEDGE": str(tmp_path)})]:
        answer = json.loads(run_faqbot(*args, "ask", "--json", "借呗提前还款", env=env).stdout)
        assert answer["results"][0]["source"] == "faq.jsonl"


def test_a_bad_knowledge_file_is_one_clear_error_not_a_traceback(tmp_path):
    (tmp_path / "broken.jsonl").write_text("{oops\n", encoding="utf-8")
    result = run_faqbot("--knowledge", str(tmp_path), "ask", "借呗")
    assert result.returncode != 0
    assert "broken.jsonl:1" in result.stderr and "Traceback" not in result.stderr


def test_skip_bad_serves_the_rest_and_says_what_it_skipped(tmp_path):
    (tmp_path / "good.jsonl").write_text('{"question": "借呗额度在哪看", "answer": "借呗首页。"}\n', encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    result = run_faqbot("--knowledge", str(tmp_path), "--skip-bad", "ask", "--json", "借呗额度在哪看")
    assert result.returncode == 0 and "empty.txt" in result.stderr
    assert json.loads(result.stdout)["answered"]


def test_console_answers_and_quits_on_end_of_input():
    result = run_faqbot(stdin="/help\n借呗升级失败怎么办\n")
    assert result.returncode == 0
    assert "/quit" in result.stdout and "来源：" in result.stdout and "再见" in result.stdout


@pytest.mark.skipif(not (SHARED / "eval" / "dev.jsonl").exists(), reason="shared dev set absent")
def test_eval_reports_the_figures_as_json():
    result = run_faqbot("eval", "--json", str(SHARED / "eval" / "dev.jsonl"))
    figures = json.loads(result.stdout)["dev.jsonl"]
    assert {"hit@1", "hit@3", "mrr", "correct_abstention", "false_abstention"} <= set(figures)


@pytest.mark.skipif(not (SHARED / "data" / "atec").exists(), reason="shared real-user data absent")
def test_eval_resolves_a_file_of_dataset_references(tmp_path):
    from bot.evaluation import REAL_LABELS

    labels = tmp_path / "refs.jsonl"
    labels.write_text("\n".join(REAL_LABELS.read_text(encoding="utf-8").splitlines()[:20]), encoding="utf-8")
    figures = json.loads(run_faqbot("eval", "--json", str(labels)).stdout)["refs.jsonl"]
    assert figures["answerable"] + figures["out_of_scope"] == 20


def test_eval_names_the_line_that_is_neither_question_nor_reference(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "借呗升级失败", "expect": []}\n{"note": "nothing to ask"}\n', encoding="utf-8")
    result = run_faqbot("eval", str(bad))
    assert result.returncode == 2 and "bad.jsonl:2" in result.stderr and "Traceback" not in result.stderr


def test_a_long_index_build_shows_progress_on_a_terminal_only():
    import io

    from bot.console import build_progress
    from bot.faq import FAQ

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert build_progress(io.StringIO()) is None
    assert build_progress(Terminal(), after=3600) is not None
    screen = Terminal()
    FAQ.load(KNOWLEDGE, use_cache=False, progress=build_progress(screen, after=0.0))
    assert "建立索引" in screen.getvalue() and screen.getvalue().endswith("\n")
    quiet = Terminal()
    FAQ.load(KNOWLEDGE, use_cache=False, progress=build_progress(quiet, after=3600))
    assert quiet.getvalue() == ""


def test_version_names_the_program_and_its_version():
    from bot import __version__

    result = run_faqbot("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"faqbot {__version__}"


@pytest.mark.parametrize("args", [("ask", "借呗升级失败怎么办"), ("ask", "--json", "-"), ("ask", "-")])
def test_a_reader_that_stops_early_ends_the_command_quietly(args):
    """``faqbot ask … | head -1``: the reader is gone before anything is written (closed at once,
    so this holds however fast the machine), and there is no traceback, only SIGPIPE's status."""
    process = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    process.stdout.close()
    _, stderr = process.communicate("借呗升级失败怎么办\n借呗额度异常\n".encode() * 50, timeout=600)
    assert "Traceback" not in stderr.decode() and "Error" not in stderr.decode()
    assert process.returncode == 141


def test_a_byte_order_mark_opening_the_batch_is_not_part_of_the_first_question():
    result = run_faqbot("ask", "--json", "-", stdin="\ufeff借呗升级失败\n\ufeff借呗额度异常\n")
    questions = [json.loads(line)["question"] for line in result.stdout.splitlines()]
    assert questions == ["借呗升级失败", "\ufeff借呗额度异常"]  # only the file's first bytes are a BOM


def test_input_that_is_not_utf8_is_answered_with_one_warning():
    process = subprocess.run([sys.executable, "-m", "bot", "--lexical", "ask", "--json", "-"],
                             input="借呗升级失败\n".encode() + b"\xff\xfe\xe5\x80\n" + "借呗额度异常\n".encode(),
                             capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, cwd=ROOT, timeout=600)
    questions = [json.loads(line)["question"] for line in process.stdout.decode().splitlines()]
    assert process.returncode == 0 and questions == ["借呗升级失败", "\ufffd\ufffd\ufffd", "借呗额度异常"]
    assert process.stderr.decode().count("not valid UTF-8") == 1


def test_an_eval_file_that_cannot_be_read_is_named_with_its_line(tmp_path):
    (tmp_path / "notes.txt").write_text("借呗升级失败怎么办\n", encoding="utf-8")
    (tmp_path / "keys.jsonl").write_text('{"q": "借呗升级失败怎么办", "answer": []}\n', encoding="utf-8")
    for name, said in (("notes.txt", "notes.txt:1: not a JSON line"), ("keys.jsonl", 'keys.jsonl:1: each line needs "question"'),
                       ("absent.jsonl", "absent.jsonl: cannot read")):
        result = run_faqbot("--lexical", "eval", str(tmp_path / name))
        assert result.returncode == 2 and said in result.stderr and "Traceback" not in result.stderr


def test_eval_json_is_one_compact_object_a_script_can_grep(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "借呗升级失败怎么办", "expect": []}\n', encoding="utf-8")
    result = run_faqbot("--lexical", "eval", "--json", str(questions))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["q.jsonl"]["out_of_scope"] == 1
    assert result.stdout.count("\n") == 1 and ', "' not in result.stdout and '"q.jsonl":{' in result.stdout


def test_eval_outside_the_repository_says_where_it_looked_for_its_default_sets(tmp_path):
    import shutil

    shutil.copytree(ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "bot", "--knowledge", str(KNOWLEDGE), "eval"], cwd=tmp_path,
                            capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(tmp_path.parent / "shared" / "eval" / "dev.jsonl") in result.stderr
    assert str(tmp_path / "tests" / "data" / "real_labels.jsonl") in result.stderr


@pytest.mark.parametrize("args, waits", [
    (["eval", "questions.jsonl"], True), (["calibrate"], True), (["report", "--suggest"], True), (["embed"], True),
    (["ask", "借呗升级失败怎么办"], None), ([], None),
])
def test_commands_that_measure_meaning_wait_for_every_vector_and_answering_ones_do_not(args, waits, monkeypatch, capsys):
    """On a new large knowledge, eval, calibrate and report --suggest never score words alone
    while vectors are embedded in the background; the console and ask start at once."""
    from bot import cli, console
    from bot.faq import FAQ
    from bot.knowledge import KnowledgeError

    asked = []

    def load(cls, folder, **options):
        asked.append(options.get("wait_for_vectors"))
        raise KnowledgeError(folder, "stopped here: the test only reads how the knowledge is loaded")

    monkeypatch.setattr(FAQ, "load", classmethod(load))
    monkeypatch.setattr(console, "build_progress", lambda: None)  # no terminal here
    assert cli._run(cli._parser().parse_args(args)) == 1
    assert asked == [waits] and "stopped here" in capsys.readouterr().err


def test_ask_takes_an_unquoted_question_word_by_word():
    result = run_faqbot("ask", "--json", "借呗", "升级", "失败")
    answer = json.loads(result.stdout)
    assert result.returncode == 0 and answer["question"] == "借呗 升级 失败" and answer["answered"]


@pytest.mark.parametrize("redirect, said", [("<&-", "standard input is closed"), (">&-", "standard output is closed"),
                                            ("> /dev/full", "No space left on device")])
def test_a_closed_or_full_stream_is_one_error_line_not_a_traceback(redirect, said):
    if "full" in redirect and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    command = f"{shlex.quote(sys.executable)} -m bot ask --json - {redirect}"
    result = subprocess.run(["bash", "-c", command], input="借呗额度没了\n", capture_output=True, text=True,
                            encoding="utf-8", cwd=ROOT, timeout=600)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("faqbot: error:")
