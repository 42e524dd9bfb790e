"""``faqbot``: console (default), ask, eval, telegram. Errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import codecs
import errno
import json
import os
import sys
from pathlib import Path
from typing import Callable

from . import __version__
from .config import MAX_FALSE_ANSWERS, Settings
from .knowledge import KnowledgeError


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--knowledge", metavar="DIR", default=argparse.SUPPRESS,
                        help="knowledge folder (default: $FAQBOT_KNOWLEDGE, else the shipped one)")
    common.add_argument("--top-k", type=int, metavar="N", default=argparse.SUPPRESS,
                        help="at most N passages per answer (default 3)")
    common.add_argument("--skip-bad", action="store_true", default=argparse.SUPPRESS,
                        help="skip knowledge files that cannot be read, and say which")
    common.add_argument("--lexical", action="store_true", default=argparse.SUPPRESS,
                        help="answer on words alone, without the sentence encoder (also FAQBOT_SEMANTIC=off)")
    parser = argparse.ArgumentParser(prog="faqbot", parents=[common],
                                     description="借呗 FAQ bot: answers from a folder of articles.")
    parser.add_argument("--version", action="version", version=f"faqbot {__version__}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("console", parents=[common], help="interactive prompt (default)")
    ask = commands.add_parser("ask", parents=[common], help="answer one question, or one per stdin line with '-'")
    ask.add_argument("question", nargs="+",
                     help="the question (its words, quoted or not), or '-' to read one per line from standard input")
    ask.add_argument("--json", action="store_true", help="print the JSON contract instead of text")
    ask.add_argument("--full", action="store_true", help="print the whole passage, not its first part")
    evaluate = commands.add_parser("eval", parents=[common], help="score question files (hit@k, MRR, abstentions)")
    evaluate.add_argument("files", nargs="*", type=Path, help="question files (default: the dev set and the real-user measuring half)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    calibrate = commands.add_parser("calibrate", parents=[common],
                                    help="fit fusion weights and refusal thresholds on labelled questions")
    calibrate.add_argument("files", nargs="*",
                           help="question files, FILE:teach / FILE:odd for a half (default: the teaching data)")
    calibrate.add_argument("--max-false-answers", type=float, default=MAX_FALSE_ANSWERS, metavar="RATE",
                           help=f"share of out-of-scope questions the bot may answer (default {MAX_FALSE_ANSWERS}, as shipped)")
    calibrate.add_argument("--out", type=Path, default=None, metavar="FILE",
                           help="where to write it (default: calibration.json of the knowledge folder)")
    calibrate.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                           help="also draw the refusal trade-off with the operating point (needs matplotlib)")
    commands.add_parser("embed", parents=[common],
                        help="write the knowledge folder's vectors.npz, so a fresh install answers at once")
    telegram = commands.add_parser("telegram", parents=[common], help="run the Telegram bot (token in $TELEGRAM_BOT_TOKEN)")
    telegram.add_argument("--webhook-url", metavar="URL", default=None,
                          help="take updates on this public HTTPS URL instead of polling (secret in $FAQBOT_WEBHOOK_SECRET)")
    telegram.add_argument("--listen", metavar="ADDR", default=None,
                          help="webhook mode: the address to listen on (default 127.0.0.1, behind a reverse proxy)")
    telegram.add_argument("--port", type=int, metavar="N", default=None,
                          help="webhook mode: the port to listen on (default 8443)")
    report = commands.add_parser("report", parents=[common],
                                 help="unanswered and 👎 questions, grouped by wording, most frequent first")
    report.add_argument("--log", type=Path, default=None, help="the JSONL log (default: $FAQBOT_LOG_DIR/unanswered.jsonl)")
    report.add_argument("--top", type=int, default=20, metavar="N", help="show the N largest groups (default 20)")
    report.add_argument("--days", type=float, default=None, metavar="N", help="only the last N days")
    report.add_argument("--suggest", action="store_true",
                        help="group by meaning and propose, per group, the passage to add it to or a topic to write")
    report.add_argument("--write", type=Path, default=None, metavar="FILE",
                        help="with --suggest: write the drafts as a commented-out *.similar.txt (a new file)")
    report.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                        help="also draw unanswered questions per week and the top groups (needs matplotlib)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(getattr(args, "knowledge", None), getattr(args, "top_k", None), getattr(args, "skip_bad", False))


def main(argv: list[str] | None = None) -> int:
    """The command, its output flushed here so that a reader who stops early (``| head``) ends it
    quietly, with the status a shell gives a command killed by SIGPIPE; output that cannot be
    written at all (a closed or full file) is one error line, not a traceback."""
    codecs.register_error(UNDECODABLE, _replace_warning_once())
    for stream, encoding, errors in ((sys.stdin, "utf-8-sig", UNDECODABLE), (sys.stdout, "utf-8", "replace"),
                                     (sys.stderr, "utf-8", "replace")):
        if hasattr(stream, "reconfigure"):  # utf-8-sig: a BOM opening the input is not part of a question
            stream.reconfigure(encoding=encoding, errors=errors)
    if sys.stdout is None:
        return _fail("standard output is closed")
    try:
        status = _run(_parser().parse_args(argv))
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_output()
        return PIPE_CLOSED
    except OSError as error:
        if error.errno not in OUTPUT_ERRORS:
            raise
        _drop_output()
        return _fail(f"cannot write the output: {error.strerror}")
    return status


UNDECODABLE = "faqbot-undecodable"  # the error handler of standard input


def _replace_warning_once() -> Callable[[UnicodeDecodeError], tuple[str, int]]:
    """An error handler: bytes that are not UTF-8 become U+FFFD, as with errors="replace", and the
    first time stderr says so, for a question read with holes in it is not the one typed."""
    warned = False

    def handler(error: UnicodeDecodeError) -> tuple[str, int]:
        nonlocal warned
        if not warned and sys.stderr is not None:
            print("faqbot: warning: standard input is not valid UTF-8; unreadable bytes are read as �",
                  file=sys.stderr)
            warned = True
        return "\ufffd", error.end

    return handler


PIPE_CLOSED = 128 + 13  # what a shell reports for a command ended by SIGPIPE
OUTPUT_ERRORS = (errno.ENOSPC, errno.EBADF, errno.EIO, errno.EDQUOT)  # writing failed, not the work


def _drop_output() -> None:
    """Point standard output at /dev/null: nothing is left to flush, or to fail, at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _fail(message: str) -> int:
    if sys.stderr is not None:
        print(f"faqbot: error: {message}", file=sys.stderr)
    return 2


# Commands that measure or write what meaning gives (``report`` loads the knowledge only for
# --suggest): every vector is embedded before they start, never words alone in the meantime.
MEASURES = ("eval", "calibrate", "report", "embed")


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "lexical", False):
        os.environ["FAQBOT_SEMANTIC"] = "off"  # read wherever the encoder is loaded, Telegram included
    settings = _settings(args)
    if settings.top_k < 1:
        print("faqbot: error: --top-k must be at least 1", file=sys.stderr)
        return 2
    command = args.command or "console"
    question = " ".join(args.question) if command == "ask" else None
    if sys.stdin is None and (command == "console" or question == "-"):
        return _fail("standard input is closed: nothing to read questions from")
    if command == "report" and not (args.suggest or args.write):
        return _report(args, None)
    if command == "telegram":
        from .telegram import run

        return run(settings, args.webhook_url, args.listen, args.port)
    if command == "eval" and not args.files and (missing := _no_default_sets()):
        print(f"faqbot: error: no question file given, and no default set found: {missing}", file=sys.stderr)
        return 2
    from . import console
    from .faq import FAQ

    try:
        faq = FAQ.load(settings.knowledge, skip_bad=settings.skip_bad, progress=console.build_progress(),
                       wait_for_vectors=True if command in MEASURES else None)
    except KnowledgeError as error:
        print(f"faqbot: error: {error}", file=sys.stderr)
        return 1
    for skipped in faq.knowledge.skipped:
        print(f"faqbot: skipped {skipped}", file=sys.stderr)

    if command == "ask":
        if question == "-":
            return console.ask_batch(faq, settings.top_k, sys.stdin) if args.json else _ask_lines(faq, settings.top_k, args.full)
        return console.ask_once(faq, question, settings.top_k, args.json, args.full)
    if command == "eval":
        from .evaluation import report

        try:
            figures = report(faq, args.files)
        except (OSError, ValueError) as error:
            print(f"faqbot: error: {error}", file=sys.stderr)
            return 2
        used = {"calibration": str(faq.calibration_path), "made_by": faq.calibration.made_by,
                "encoder": faq.dense.encoder.name if faq.dense else None}
        print(json.dumps({"used": used, **figures}, ensure_ascii=False, separators=(",", ":")) if args.json
              else _table(figures) + "\n\n" + "\n".join(f"{k}: {v}" for k, v in used.items()))
        return 0
    if command == "embed":
        from .faq import ship_vectors

        try:
            count = ship_vectors(faq, settings.knowledge)
        except RuntimeError as error:
            print(f"faqbot: error: {error}", file=sys.stderr)
            return 1
        print(f"{count} vectors written to {settings.knowledge / 'vectors.npz'}")
        return 0
    if command == "calibrate":
        return _calibrate(faq, args, settings.knowledge)
    if command == "report":
        return _report(args, faq)
    return console.interactive(faq, settings.top_k)


def _no_default_sets() -> str:
    """Where ``faqbot eval`` looked for its default sets, when it found none (else "")."""
    from .evaluation import DEV_SET, REAL_LABELS, SHARED

    if DEV_SET.exists() or (REAL_LABELS.exists() and (SHARED / "data").exists()):
        return ""
    return (f"looked for the dev set {DEV_SET} and for the real-user labels {REAL_LABELS} with the data "
            f"{SHARED / 'data'}; run it inside the repository, or name the question files")


def _calibrate(faq, args: argparse.Namespace, folder: Path) -> int:
    from .calibration import calibrate, default_files
    from .decision import CALIBRATION_FILE
    from .plots import PlotError, plot_tradeoff, require

    try:
        if args.plot:
            require()  # before minutes of fitting, not after
        calibration, figures = calibrate(faq, args.files or default_files(), args.max_false_answers)
    except (OSError, ValueError, PlotError) as error:
        print(f"faqbot: error: {error}", file=sys.stderr)
        return 2
    out = args.out or folder / CALIBRATION_FILE
    calibration.save(out)
    print(f"{figures['examples']} labelled questions ({figures['answerable']} answerable); "
          f"target: at most {args.max_false_answers:.0%} of out-of-scope questions answered")
    print("fusion weights (standardised scores): " + ", ".join(f"{k} {v}" for k, v in calibration.fusion.items()))
    for kind in ("hybrid", "lexical"):
        if kind not in figures:
            continue
        model = getattr(calibration, kind)
        print(f"\n{kind}: refuse below P={model.refuse_below}, ask which below P={model.answer_at}")
        print(f"{'P ≥':>6}{'false answers':>15}{'false refusals':>16}{'hit@1':>8}   (out-of-fold, {FOLDS_NOTE})")
        for row in figures[kind]["tradeoff"]:
            mark = "  ◀" if abs(row["threshold"] - model.refuse_below) < 0.025 else ""
            print(f"{row['threshold']:>6}{row['false_answers']:>15}{row['false_refusals']:>16}{row['hit@1']:>8}{mark}")
        point = figures[kind]["operating_point"]
        print(f"operating point P ≥ {point['threshold']}: false answers {point['false_answers']}, "
              f"false refusals {point['false_refusals']}, hit@1 {point['hit@1']}")
    print(f"\nclarify when the runner-up's share is ≥ {calibration.close} of the best's")
    print(f"written to {out}")
    if args.plot:
        try:
            plot_tradeoff(figures, args.plot)
        except PlotError as error:
            print(f"faqbot: error: {error}", file=sys.stderr)
            return 1
        print(f"trade-off drawn in {args.plot}")
    return 0


FOLDS_NOTE = "5-fold cross-validation"


def _report(args: argparse.Namespace, faq) -> int:
    """The log's groups: by words, or (``faq`` given, ``--suggest``) by meaning with proposals."""
    from .feedback import LOG_FILE, group_entries, log_dir, read_log, render_report, unanswered, within_days
    from .plots import PlotError, plot_report, require
    from .suggest import render_drafts, render_suggestions, suggest, write_drafts
    from .text import Tokenizer

    if args.days is not None and not args.days > 0:
        print("faqbot: error: --days must be a positive number of days", file=sys.stderr)
        return 2
    path = args.log or log_dir() / LOG_FILE
    if args.write and (args.write.exists() or args.write.is_symlink()):  # said before the work, not after
        print(f"faqbot: error: {args.write} already exists; name a new file for the drafts", file=sys.stderr)
        return 1
    if not path.exists():
        print(f"faqbot: no log at {path} yet: nothing was refused or marked 👎", file=sys.stderr)
        return 0
    try:
        if args.plot:
            require()
        entries = read_log(path)
        if args.days is not None:
            entries = within_days(entries, args.days)
        if faq is None:
            groups = group_entries(unanswered(entries), Tokenizer())
            print(render_report(groups, args.top))
        else:
            result = suggest(faq, entries, args.top)
            groups = [s.group for s in result.suggestions]
            print(render_suggestions(result))
            if args.write:
                write_drafts(args.write, render_drafts(result))
                print(f"\ndrafts written to {args.write}: uncomment the right ones, then move the file into the knowledge folder")
        if args.plot:
            plot_report(entries, groups, args.plot)
            print(f"drawn in {args.plot}")
    except (OSError, PlotError) as error:
        print(f"faqbot: error: {error}", file=sys.stderr)
        return 1
    return 0


def _ask_lines(faq, top_k: int, full: bool) -> int:
    from .console import ask_once

    for line in sys.stdin:
        ask_once(faq, line.rstrip("\r\n"), top_k, as_json=False, full=full)
        print()
    return 0


def _table(figures: dict) -> str:
    keys = ["answerable", "out_of_scope", "hit@1", "hit@3", "mrr", "correct_abstention", "false_abstention"]
    width = max(len(name) for name in figures) + 2
    rows = [f"{'set':<{width}}" + "".join(f"{k:>19}" for k in keys)]
    for name, metrics in figures.items():
        rows.append(f"{name:<{width}}" + "".join(f"{'-' if metrics[k] is None else metrics[k]:>19}" for k in keys))
    return "\n".join(rows)
