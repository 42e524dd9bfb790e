"""The maintainer would rather look than read: both pictures are drawn, and without matplotlib
the commands say how to get it."""

import json
import sys

import pytest

from bot.calibration import calibrate
from bot.feedback import Group
from bot.plots import PlotError, plot_report, plot_tradeoff, weekly

from conftest import run_faqbot

PNG = b"\x89PNG\r\n\x1a\n"

# A small labelled file of our own: answerable questions with a phrase of the passage that
# answers them, and questions the articles do not answer (expect []).
LABELLED = [
    ("旧手机是不是升级不了借呗", ["设备型号过低"]),
    ("借呗升级失败会耽误公司急用钱吗", ["突发事件往往需要快速的资金支持"]),
    ("除了借呗公司还能找什么融资", ["传统的银行贷款、供应链金融产品等"]),
    ("升级失败了平台该怎么指导用户", ["清晰、具体的解决步骤"]),
    ("借呗账单信息缺失会影响财务报告吗", ["财务报告的不完整性"]),
    ("借呗后台系统出故障额度会查不到吗", ["硬件设备故障、软件漏洞或网络中断"]),
    ("公司怎么监控借呗的账单", ["定期核对各项账单信息"]),
    ("借呗还完分期为什么没有新额度", ["最高授信上限"]),
    ("借呗放贷的钱从哪来 额度池紧张会怎样", ["合作银行和其他金融机构"]),
    ("借呗有没有提额活动", ["额度提升活动或优惠政策"]),
    ("怎么规划借呗的长期使用", ["制定合理的融资计划"]),
    ("借呗平台会收集用户反馈吗", ["用户反馈渠道"]),
    ("花呗怎么还款", []), ("北京明天下雨吗", []), ("借呗利息一天多少", []), ("信用卡怎么办理", []),
    ("余额宝收益怎么算", []), ("推荐一本小说", []), ("股票怎么开户", []), ("微信零钱怎么提现", []),
    ("怎么查自己的征信报告", []), ("房贷提前还款划算吗", []), ("怎么订机票", []), ("车险哪家便宜", []),
]


@pytest.fixture
def labelled(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{n}", "question": q, "expect": e}, ensure_ascii=False) + "\n"
                            for n, (q, e) in enumerate(LABELLED)), encoding="utf-8")
    return path


def test_the_operating_point_moves_with_the_target(faq, labelled):
    strict, strict_figures = calibrate(faq, [str(labelled)], max_false_answers=0.05)
    loose, loose_figures = calibrate(faq, [str(labelled)], max_false_answers=0.4)
    assert strict.hybrid.refuse_below > loose.hybrid.refuse_below
    for figures, target in ((strict_figures, 0.05), (loose_figures, 0.4)):
        point = figures["hybrid"]["operating_point"]
        assert point["false_answers"] <= target and point["threshold"] == figures["hybrid"]["refuse_below"]
    assert strict_figures["hybrid"]["operating_point"]["false_refusals"] >= loose_figures["hybrid"]["operating_point"]["false_refusals"]


def test_faqbot_calibrate_prints_the_trade_off_and_draws_it(labelled, tmp_path):
    out, picture = tmp_path / "calibration.json", tmp_path / "tradeoff.png"
    result = run_faqbot("calibrate", str(labelled), "--max-false-answers", "0.1", "--out", str(out), "--plot", str(picture))
    assert result.returncode == 0, result.stderr
    assert "24 labelled questions (12 answerable)" in result.stdout and "operating point P ≥" in result.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["hybrid"]["refuse_below"] > 0
    assert picture.read_bytes().startswith(PNG) and picture.stat().st_size > 10_000


def figures_of_a_calibration() -> dict:
    curve = [{"threshold": t / 20, "false_answers": 1 - t / 20, "false_refusals": t / 20, "hit@1": 0.9 - t / 40}
             for t in range(1, 20)]
    point = {"threshold": 0.62, "false_answers": 0.05, "false_refusals": 0.3, "hit@1": 0.6}
    return {"examples": 40, "answerable": 20, "max_false_answers": 0.05,
            "hybrid": {"tradeoff": curve, "operating_point": point}}


def test_the_trade_off_picture_is_a_png(tmp_path):
    plot_tradeoff(figures_of_a_calibration(), tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes().startswith(PNG)


def log_over_weeks() -> list[dict]:
    days = ["2026-11-02", "2026-11-03", "2026-11-24", "2026-11-25", "2026-11-30"]
    kinds = ["refused", "downvote", "none_of_these", "should_answer", "clarify_pick"]
    return [{"time": f"{day}T10:00:00+0000", "kind": kind, "chat": "c", "question": "借呗升级失败", "shown": []}
            for day, kind in zip(days, kinds)]


def test_weeks_without_questions_are_drawn_at_zero_and_taps_are_not_counted():
    weeks = weekly(log_over_weeks())
    assert [label for label, _ in weeks] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]  # W49: a tap only
    assert [sum(counts.values()) for _, counts in weeks] == [2, 0, 0, 2]


def test_the_report_picture_is_a_png(tmp_path):
    groups = [Group("借呗升级失败", 4, 3, 1, 2, ()), Group("花呗\x1b[31m提额", 2, 2, 0, 2, ())]
    plot_report(log_over_weeks(), groups, tmp_path / "r.png")
    data = (tmp_path / "r.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_an_empty_log_or_a_bad_path_is_a_clear_error(tmp_path):
    with pytest.raises(PlotError, match="no dated"):
        plot_report([], [], tmp_path / "r.png")
    with pytest.raises(PlotError, match="cannot write"):
        plot_tradeoff(figures_of_a_calibration(), tmp_path / "no-such-folder" / "t.png")


def test_without_matplotlib_the_message_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError, match=r"faqbot\[plot\]"):
        plot_tradeoff(figures_of_a_calibration(), tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()


def test_faqbot_report_plot_draws_the_log(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in log_over_weeks()), encoding="utf-8")
    picture = tmp_path / "report.png"
    result = run_faqbot("report", "--log", str(log), "--plot", str(picture))
    assert result.returncode == 0, result.stderr
    assert picture.read_bytes().startswith(PNG)
