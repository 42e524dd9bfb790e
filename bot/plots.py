"""Pictures for the maintainer, where looking beats reading: the refusal trade-off of
``faqbot calibrate`` and the unanswered questions of ``faqbot report``.

matplotlib is an optional extra (``pip install 'faqbot[plot]'``): without it ``PlotError`` says
so and nothing else fails. Chinese labels need a CJK font; when the machine has none, groups are
labelled by their rank in the text report (``#1`` …) rather than drawn as empty boxes.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Sequence

from .feedback import UNANSWERED, Group, entry_time, visible

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN", "Droid Sans Fallback")
KIND_LABELS = {"refused": ("refused", "未答"), "downvote": ("thumbs down", "点踩"), "none_of_these": ("none of these", "都不是"),
               "should_answer": ("should answer", "应该能回答")}  # (without a CJK font, with one); fonts lack 👎
TOP_GROUPS = 8


class PlotError(Exception):
    """A picture cannot be drawn here (matplotlib missing) or written (the path)."""


def require() -> None:
    """PlotError now, before any long work, when the picture could not be drawn at the end."""
    _pyplot()


def _pyplot():
    """matplotlib's pyplot on a file-only backend, or PlotError saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError("drawing needs matplotlib: pip install 'faqbot[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _cjk_font() -> str | None:
    """The first installed font that draws Chinese, if any."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _save(figure, path: Path) -> None:
    try:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as error:
        raise PlotError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        import matplotlib.pyplot as pyplot

        pyplot.close(figure)


def plot_tradeoff(figures: dict, path: Path) -> None:
    """``faqbot calibrate``'s figures as two panels per scope model: false answers, false
    refusals and hit@1 against the threshold, and false refusals against false answers; the
    chosen operating point marked on both, the target as a dashed line."""
    pyplot = _pyplot()
    kinds = [kind for kind in ("hybrid", "lexical") if kind in figures]
    if not kinds:
        raise PlotError("the calibration has no trade-off to draw")
    target = figures.get("max_false_answers")
    figure, axes = pyplot.subplots(len(kinds), 2, figsize=(10, 4 * len(kinds)), squeeze=False, layout="constrained")
    for row, kind in zip(axes, kinds):
        curve, point = figures[kind]["tradeoff"], figures[kind]["operating_point"]
        thresholds = [r["threshold"] for r in curve]
        for key, label in (("false_answers", "false answers (out of scope answered)"),
                           ("false_refusals", "false refusals (answerable refused)"), ("hit@1", "hit@1 of answerable")):
            row[0].plot(thresholds, [r[key] for r in curve], marker=".", label=label)
        row[0].axvline(point["threshold"], color="black", linewidth=1)
        row[0].annotate(f"refuse below P={point['threshold']:.2f}", (point["threshold"], 0.95),
                        xytext=(4, 0), textcoords="offset points", fontsize=8)
        row[0].set(xlabel="threshold on P(answerable)", ylabel="share", ylim=(0, 1), title=f"{kind}: rates by threshold")
        row[0].legend(fontsize=8, loc="center right")
        row[1].plot([r["false_answers"] for r in curve], [r["false_refusals"] for r in curve], marker=".", color="grey")
        row[1].plot([point["false_answers"]], [point["false_refusals"]], marker="o", markersize=9, color="crimson",
                    label=f"operating point: {point['false_answers']:.0%} false answers, "
                          f"{point['false_refusals']:.0%} false refusals")
        if target is not None:
            row[1].axvline(target, color="crimson", linestyle="--", linewidth=1, label=f"target ≤ {target:.0%}")
        row[1].set(xlabel="false answers", ylabel="false refusals", xlim=(0, 1), ylim=(0, 1),
                   title=f"{kind}: refusal trade-off (out-of-fold)")
        row[1].legend(fontsize=8, loc="upper right")
    figure.suptitle(f"faqbot calibrate: {figures.get('examples', '?')} labelled questions "
                    f"({figures.get('answerable', '?')} answerable)")
    _save(figure, path)


def weekly(entries: Sequence[dict]) -> list[tuple[str, Counter]]:
    """Unanswered entries per ISO week (``2026-W48``), oldest first, counted by kind; weeks
    without any entry between the first and the last are kept, at zero."""
    counts: dict[tuple[int, int], Counter] = {}
    for entry in entries:
        when = entry_time(entry)
        if when is not None and entry.get("kind") in UNANSWERED:
            year, week, _ = when.isocalendar()
            counts.setdefault((year, week), Counter())[entry["kind"]] += 1
    if not counts:
        return []
    first, last = min(counts), max(counts)
    day, weeks = datetime.fromisocalendar(*first, 1), []
    while (key := tuple(day.isocalendar())[:2]) <= last:
        weeks.append((f"{key[0]}-W{key[1]:02d}", counts.get(key, Counter())))
        day = datetime.fromordinal(day.toordinal() + 7)
    return weeks


def plot_report(entries: Sequence[dict], groups: Sequence[Group], path: Path) -> None:
    """Unanswered questions per week (stacked by kind), and the largest groups."""
    pyplot = _pyplot()
    weeks = weekly(entries)
    if not weeks:
        raise PlotError("the log has no dated unanswered questions to draw")
    font = _cjk_font()
    if font:
        pyplot.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    figure, (by_week, by_group) = pyplot.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.2]},
                                                layout="constrained")
    positions = range(len(weeks))
    bottom = [0] * len(weeks)
    for kind in UNANSWERED:
        heights = [counts[kind] for _, counts in weeks]
        if any(heights):
            by_week.bar(positions, heights, bottom=bottom, label=KIND_LABELS[kind][1 if font else 0])
            bottom = [b + h for b, h in zip(bottom, heights)]
    by_week.set_xticks(list(positions), [label for label, _ in weeks], rotation=45, ha="right", fontsize=8)
    by_week.set(ylabel="questions", title="unanswered questions per week", ylim=(0, max(bottom) * 1.25 + 1))
    by_week.legend(fontsize=8, loc="upper left", ncol=4)  # in the headroom above the bars
    shown = list(groups[:TOP_GROUPS])[::-1]
    labels = [(_short(g.example) if font else f"#{len(shown) - n}") for n, g in enumerate(shown)]
    by_group.barh(range(len(shown)), [g.count for g in shown], color="slategrey")
    by_group.set_yticks(range(len(shown)), labels, fontsize=9)
    for n, group in enumerate(shown):
        by_group.annotate(f"{group.count} · {group.chats} chats", (group.count, n), xytext=(3, -3),
                          textcoords="offset points", fontsize=8)
    by_group.set(xlabel="questions", title=f"top {len(shown)} groups" + ("" if font else " (as numbered in the report)"))
    _save(figure, path)


def _short(text: str, limit: int = 18) -> str:
    text = visible(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"
