"""Knowledge folder → question-and-answer passages.

Articles (.txt/.md) are cleaned of site noise and cut where the meaning changes:
one passage per section or numbered item, the chain of headings as its question.
Curated Q&A files (.csv/.jsonl) become passages as they are. Similar questions
(相似问) from ``*.similar.txt`` files join the passage they name. Knows nothing of
ranking or front ends.

Every file is opened once, checked (a regular file, inside the folder even through a link,
within its kind's size limit) before a byte is read, and read once: ``Knowledge.digest`` is the
hash of exactly the bytes that were parsed, so a cache keyed on it can never hold an index of
other content. Size limits: articles and similar-question files 5 MB, Q&A files 200 MB;
``FAQBOT_MAX_FILE_MB`` sets both ("50") or each ("5,500": articles, Q&A).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

HEADING_SEPARATOR = " › "
ARTICLE_SUFFIXES = (".txt", ".md")
QA_SUFFIXES = (".csv", ".jsonl")
SIMILAR_SUFFIX = ".similar.txt"
UNANSWERABLE_SUFFIX = ".unanswerable.txt"
MAX_FILE_BYTES = 5_000_000  # an article or a similar-question file
MAX_QA_FILE_BYTES = 200_000_000  # a Q&A file: 100,000 entries are about 12 MB
CONCLUSION_HEADING = "结语"
OVERVIEW_CHARS = 900

_TEXT_END = "。！!；;：:，,、…）)”\"】"  # a short line ending so is text; a question mark may end a heading (FAQ headings ask)
_NUMBERED_ITEM = re.compile(r"^(\d{1,2})\s*[.、．)）]\s*(\S.*)$")
_FIGURE_CAPTION = re.compile(r"\s图\s*\d{1,2}$")
_AUTHOR_LINE = re.compile(r"^作者\s*[:：].{0,40}$")
_LEGAL_NOTICE = re.compile(r"^【?用户内容法律责任告知】?")
_FICTION_NOTICE = re.compile(r"本文所有信息均为虚构")
_SITE_FURNITURE = re.compile(
    r"^(站内文章|相关文章|相关阅读|推荐阅读|上一篇.*|下一篇.*|返回顶部|分享到.*|点击.{0,6}阅读.*|版权所有.*|Copyright.*)$",
    re.IGNORECASE,
)
_INLINE_LEAD = re.compile(r"^([^，,。；;：:]{2,14})。(.{10,})$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
log = logging.getLogger(__name__)


class KnowledgeError(Exception):
    """A knowledge file that cannot be used; the message names the file (and line)."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path.name}:{line}" if line else self.path.name
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Passage:
    """One answer unit: the heading chain is the question it answers."""

    id: str
    source: str
    headings: tuple[str, ...]
    answer: str
    similar: tuple[str, ...] = ()
    framing: bool = False  # an article's introduction or closing section: it frames, it answers no question

    @property
    def question(self) -> str:
        return HEADING_SEPARATOR.join(self.headings)

    @property
    def heading(self) -> str:
        """The passage's own heading, the last of its chain: its short title."""
        return self.headings[-1]

    @property
    def article(self) -> str:
        """The title of the article it comes from ("" for a Q&A file, whose entries have none)."""
        return "" if self.source.lower().endswith(QA_SUFFIXES) else self.headings[0]


@dataclass(frozen=True)
class Topic:
    """Questions this knowledge does not answer, alike in subject, and the reply they deserve."""

    name: str
    reply: str
    questions: tuple[str, ...]


@dataclass(frozen=True)
class Knowledge:
    """Everything loaded from a folder: passages, the articles' own notices, the topics it does
    not answer, what was skipped."""

    passages: tuple[Passage, ...]
    notices: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    encodings: dict[str, str] = field(default_factory=dict)
    digest: str = ""  # sha256 of every file's name and the bytes parsed: a cache key that cannot go stale
    warnings: tuple[str, ...] = ()  # what a maintainer should hear of (headings left without text, misnamed files, ...)
    topics: tuple[Topic, ...] = ()  # questions it does not answer (``*.unanswerable.txt``)


@dataclass(frozen=True)
class FileLimits:
    """The largest file of each kind that is read, in bytes."""

    article: int = MAX_FILE_BYTES
    qa: int = MAX_QA_FILE_BYTES

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "FileLimits":
        """FAQBOT_MAX_FILE_MB: one number for both kinds, or "ARTICLES,QA"; ValueError when it is
        not one or two positive numbers."""
        text = ((os.environ if environ is None else environ).get("FAQBOT_MAX_FILE_MB") or "").strip()
        if not text:
            return cls()
        try:
            sizes = [float(part) for part in text.split(",")]
            if len(sizes) > 2 or not all(0 < size < float("inf") for size in sizes):
                raise ValueError
        except ValueError:
            raise ValueError("FAQBOT_MAX_FILE_MB must be megabytes: one number, or two (articles,Q&A)") from None
        return cls(int(sizes[0] * 1_000_000), int(sizes[-1] * 1_000_000))

    def of(self, path: Path) -> int:
        return self.qa if path.name.lower().endswith(QA_SUFFIXES) else self.article


def passage_id(source: str, headings: tuple[str, ...]) -> str:
    """Stable id from the file stem and heading chain, never from position."""
    digest = hashlib.sha1(HEADING_SEPARATOR.join(headings).encode("utf-8")).hexdigest()[:10]
    return f"{Path(source).stem}#{digest}"


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, opened once and checked before reading (no waiting on a FIFO, no
    reading a huge or sparse file to find out), and never more than ``limit`` of them: a file that
    grows while it is read is refused too."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise KnowledgeError(path, f"cannot open ({error.strerror or error})") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise KnowledgeError(path, "not a regular file")
        if info.st_size > limit:
            raise KnowledgeError(path, f"file too large ({info.st_size:,} bytes; limit {limit:,}, see FAQBOT_MAX_FILE_MB)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise KnowledgeError(path, f"file too large (grew past the limit of {limit:,} bytes while read)")
    return data


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> tuple[str, str]:
    """Decode a file as UTF-8 (with or without BOM) or GB18030; refuse binary, empty or huge files."""
    return decode(path, read_bytes(path, limit))


def decode(path: Path, data: bytes) -> tuple[str, str]:
    """A file's bytes as text, and the encoding they were in (UTF-16 only with its byte-order
    mark, as Windows Notepad writes it)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _non_empty(path, data.decode("utf-16")), "utf-16"
        except UnicodeDecodeError:
            raise KnowledgeError(path, "invalid UTF-16 (truncated or damaged text)") from None
    if b"\x00" in data:
        raise KnowledgeError(path, "binary file (contains NUL bytes); save it as UTF-8 text")
    try:
        return _non_empty(path, data.decode("utf-8-sig")), "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError as error:
        if _mostly_utf8(data):  # a damaged UTF-8 file, not a GB18030 one: say where it breaks
            line = data[: error.start].count(b"\n") + 1
            raise KnowledgeError(path, "invalid UTF-8 (truncated or damaged text)", line) from None
    try:
        return _non_empty(path, data.decode("gb18030")), "gb18030"
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise KnowledgeError(path, "not valid UTF-8 or GB18030 text", line) from None


def _non_empty(path: Path, text: str) -> str:
    if not text.strip():
        raise KnowledgeError(path, "empty file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _mostly_utf8(data: bytes) -> bool:
    """GB18030 decodes nearly any bytes; UTF-8 with only a few bad sequences was meant as UTF-8."""
    text = data.decode("utf-8", errors="replace")
    return text.count("\ufffd") * 2 < sum(1 for ch in text if ord(ch) > 0x7F and ch != "\ufffd")


def clean_lines(text: str) -> tuple[list[str], list[str]]:
    """Strip site noise; return (content lines, the article's own fiction notices)."""
    lines: list[str] = []
    notices: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip().replace("\u3000", " ")
        if not line:
            continue
        if _LEGAL_NOTICE.match(line) or _SITE_FURNITURE.match(line) or _AUTHOR_LINE.match(line):
            continue
        if _FIGURE_CAPTION.search(line) and not any(mark in line for mark in "。，,"):
            continue
        if _FICTION_NOTICE.search(line):
            notices.append(line.strip("()（）"))
            continue
        if lines and line == lines[-1]:
            continue
        lines.append(line)
    return lines, notices


def _is_heading(line: str) -> bool:
    return len(line) <= 40 and line[-1] not in _TEXT_END and "。" not in line


def _numbered_item(line: str) -> str | None:
    match = _NUMBERED_ITEM.match(line)
    if match and _is_heading(match.group(2)):
        return match.group(2).strip()
    return None


@dataclass
class _Block:
    headings: tuple[str, ...]
    paragraphs: list[str]


def _blocks_of_plain_article(lines: list[str]) -> list[_Block]:
    """Title, sections and numbered items → blocks of paragraphs under a heading chain."""
    title, body = lines[0], lines[1:]
    blocks = [_Block((title,), [])]
    section: str | None = None
    for line in body:
        item = _numbered_item(line)
        if item is not None:
            blocks.append(_Block((title, section, item) if section else (title, item), []))
        elif _is_heading(line):
            section = line
            blocks.append(_Block((title, section), []))
        else:
            blocks[-1].paragraphs.append(line)
    return blocks


def _blocks_of_markdown(lines: list[str]) -> list[_Block]:
    """Markdown '#' headings give the chain directly; numbered items nest under them."""
    chain: list[str] = []
    blocks: list[_Block] = []
    for line in lines:
        match = _MD_HEADING.match(line)
        if match:
            level = len(match.group(1))
            chain = chain[: level - 1] + [match.group(2)]
            blocks.append(_Block(tuple(chain), []))
            continue
        item = _numbered_item(line)
        if item is not None and chain:
            blocks.append(_Block((*chain, item), []))
        elif blocks:
            blocks[-1].paragraphs.append(line)
        else:
            chain = [line]
            blocks.append(_Block((line,), []))
    return blocks


def _split_inline_leads(block: _Block) -> list[_Block]:
    """A run of ≥2 paragraphs opening with a short lead sentence ("系统的规则限制。…") is a list:
    each such paragraph becomes its own item under the block's chain."""
    leads = [_INLINE_LEAD.match(p) for p in block.paragraphs]
    run = max((len(s) for s in "".join("x" if m else " " for m in leads).split()), default=0)
    if run < 2:
        return [block]
    out = [_Block(block.headings, [])]
    for paragraph, lead in zip(block.paragraphs, leads):
        if lead:
            out.append(_Block((*block.headings, lead.group(1)), [lead.group(2)]))
        else:
            out[-1].paragraphs.append(paragraph)
    return out


def _outline_lead_ins(blocks: list[_Block]) -> list[_Block]:
    """A section that only announces a list ("…以下几个方面:") gathers its items, so that it
    answers the broad question ("why does X happen?") on its own: the items in full when that
    stays short (``OVERVIEW_CHARS``), else their headings."""
    for position, block in enumerate(blocks):
        if not block.paragraphs or block.paragraphs[-1][-1] not in ":：":
            continue
        depth = len(block.headings)
        items: list[_Block] = []
        for later in blocks[position + 1:]:
            if len(later.headings) <= depth or later.headings[:depth] != block.headings:
                break
            if len(later.headings) == depth + 1:
                items.append(later)
        full = [f"{n}. {item.headings[-1]}：" + "\n".join(item.paragraphs) for n, item in enumerate(items, start=1)]
        if sum(map(len, full)) + sum(map(len, block.paragraphs)) <= OVERVIEW_CHARS:
            block.paragraphs.extend(full)
        elif items:
            block.paragraphs.append("；".join(f"{n}. {item.headings[-1]}" for n, item in enumerate(items, start=1)) + "。")
    return blocks


def _split_conclusion(blocks: list[_Block]) -> list[_Block]:
    """The article's closing paragraphs trail its last numbered item; give them their own passage."""
    items = [n for n, block in enumerate(blocks) if len(block.headings) >= 3]
    if not items or len(blocks[items[-1]].paragraphs) < 2:
        return blocks
    last = blocks[items[-1]]
    closing = _Block((last.headings[0], CONCLUSION_HEADING), last.paragraphs[1:])
    return [*blocks[: items[-1]], _Block(last.headings, last.paragraphs[:1]), closing, *blocks[items[-1] + 1:]]


@dataclass(frozen=True)
class Article:
    passages: tuple[Passage, ...]
    notices: tuple[str, ...]  # the article's own fiction notices
    left_out: tuple[str, ...]  # headings with no text under them, nor under any heading inside them


def split_article(source: str, text: str) -> Article:
    """One article's text → its passages, its fiction notices and the headings left without text
    (often a one-line answer without 。, read as a heading: the maintainer must hear of it)."""
    lines, notices = clean_lines(text)
    if not lines:
        raise KnowledgeError(source, "no content left after cleaning")
    markdown = source.endswith(".md") and any(_MD_HEADING.match(line) for line in lines)
    blocks = _blocks_of_markdown(lines) if markdown else _blocks_of_plain_article(lines)
    blocks = [piece for block in blocks for piece in _split_inline_leads(block)]
    with_text = {block.headings[:depth] for block in blocks if block.paragraphs for depth in range(1, len(block.headings) + 1)}
    left_out = [block.headings[-1] for block in blocks if block.headings not in with_text]
    blocks = _split_conclusion(_outline_lead_ins([block for block in blocks if block.paragraphs]))
    return Article(tuple(_mark_framing(_passages_from_blocks(source, blocks))), tuple(notices), tuple(left_out))


def _mark_framing(passages: list[Passage]) -> list[Passage]:
    """An article's introduction (the text under its title alone, before the first section) and
    its closing section (the last top-level section, with no items of its own) frame the article:
    told from its structure, whatever they are called."""
    if len(passages) < 2:
        return passages
    first, last = passages[0], passages[-1]
    framing = {first.id} if len(first.headings) == 1 else set()
    if len(last.headings) == 2 and not any(p.headings[:2] == last.headings and p is not last for p in passages):
        framing.add(last.id)
    return [replace(p, framing=True) if p.id in framing else p for p in passages]


def _passages_from_blocks(source: str, blocks: list[_Block]) -> list[Passage]:
    seen: dict[tuple[str, ...], int] = {}
    passages = []
    for block in blocks:
        headings = block.headings
        seen[headings] = seen.get(headings, 0) + 1
        if seen[headings] > 1:  # a repeated heading chain in one file: number the later ones
            headings = (*headings[:-1], f"{headings[-1]} ({seen[headings]})")
        passages.append(Passage(passage_id(source, headings), source, headings, "\n".join(block.paragraphs)))
    return passages


def _qa_passage(path: Path, line: int, row: dict) -> Passage:
    question = str(row.get("question") or "").strip()
    answer = str(row.get("answer") or "").strip()
    if not question or not answer:
        raise KnowledgeError(path, "row needs a non-empty 'question' and 'answer'", line)
    headings = (question,)
    return Passage(passage_id(path.name, headings), path.name, headings, answer)


def read_qa_csv(path: Path, text: str) -> list[Passage]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"question", "answer"} - set(reader.fieldnames or ())
    if missing:
        raise KnowledgeError(path, f"missing column(s): {', '.join(sorted(missing))}", 1)
    passages = []
    for row in reader:
        if None in row:  # more fields than the header: an answer's own commas split it
            raise KnowledgeError(path, f"{len(reader.fieldnames or ()) + len(row[None])} fields where the header has "
                                 f"{len(reader.fieldnames or ())}; put an answer that holds commas in double quotes",
                                 reader.line_num)
        passages.append(_qa_passage(path, reader.line_num, row))
    return passages


def read_qa_jsonl(path: Path, text: str) -> list[Passage]:
    passages = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise KnowledgeError(path, f"not a JSON object ({error.msg})", number) from None
        if not isinstance(row, dict):
            raise KnowledgeError(path, "not a JSON object", number)
        passages.append(_qa_passage(path, number, row))
    return passages


def read_similar(path: Path, text: str) -> list[tuple[int, str, str]]:
    """``[key]`` lines name a passage (id, heading or heading path); the lines under it are
    the ways users ask for it. Returns (line of the key, key, question)."""
    entries = []
    key: str | None = None
    key_line = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            key, key_line = line[1:-1].strip(), number
        elif key is None:
            raise KnowledgeError(path, "a question before any [passage] line", number)
        else:
            entries.append((key_line, key, line))
    return entries


def read_unanswerable(path: Path, text: str) -> list[Topic]:
    """``[topic]`` lines open a topic, a ``> `` line under it is its reply, every other line a
    question of that topic. A topic without a reply or without questions is an error."""
    topics: list[tuple[int, str, list[str], list[str]]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            topics.append((number, line[1:-1].strip(), [], []))
        elif not topics:
            raise KnowledgeError(path, "a question before any [topic] line", number)
        elif line.startswith(">"):
            topics[-1][2].append(line[1:].strip())
        else:
            topics[-1][3].append(line)
    for number, name, replies, questions in topics:
        if len(replies) != 1 or not questions:
            raise KnowledgeError(path, f"[{name}] needs exactly one '> reply' line and at least one question", number)
    return [Topic(name, replies[0], tuple(questions)) for _, name, replies, questions in topics]


def _resolve(key: str, passages: list[Passage]) -> list[Passage]:
    parts = tuple(part.strip() for part in re.split(r"›|>", key))
    return [
        p for p in passages
        if p.id == key or p.headings[-len(parts):] == parts
    ]


def attach_similar(passages: list[Passage], path: Path, entries: list[tuple[int, str, str]],
                   skip_bad: bool = False) -> tuple[list[Passage], list[str]]:
    """The passages with the similar questions of one file attached, and (with ``skip_bad``) the
    keys left out: a key that names no passage or several is an error, or with ``skip_bad`` only
    that key's questions are left out, not the rest of the file."""
    extra: dict[str, list[str]] = {}
    left_out: list[str] = []
    for line, key, question in entries:
        matches = _resolve(key, passages)
        if len(matches) == 1:
            extra.setdefault(matches[0].id, []).append(question)
            continue
        error = KnowledgeError(path, f"[{key}] {_unresolved(key, matches, passages)}", line)
        if not skip_bad:
            raise error
        left_out.append(f"{error}; its questions are left out")
    attached = [replace(p, similar=p.similar + tuple(extra[p.id])) if p.id in extra else p for p in passages]
    return attached, list(dict.fromkeys(left_out))  # each bad key once


def _unresolved(key: str, matches: list[Passage], passages: list[Passage]) -> str:
    """Why a key names no passage or several, and what it may have meant."""
    if matches:
        files = ", ".join(dict.fromkeys(p.source for p in matches))
        return f"names {len(matches)} passages (in {files}); use the id or a longer heading path"
    last = re.split(r"›|>", key)[-1].strip()
    near = difflib.get_close_matches(last, list(dict.fromkeys(p.headings[-1] for p in passages)), n=1, cutoff=0.6)
    hint = f"did you mean [{near[0]}]?" if near else "was the heading renamed, or its article removed?"
    return f"names no passage ({hint})"


def _is_knowledge_file(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith((".", "readme"))
        and name.endswith(ARTICLE_SUFFIXES + QA_SUFFIXES)
    )


def _misspelt_data_suffix(name: str) -> str | None:
    """The data-file suffix a name comes close to without having it ("x.similiar.txt"), if any."""
    parts = name.split(".")
    if len(parts) < 3 or name.endswith((SIMILAR_SUFFIX, UNANSWERABLE_SUFFIX)):
        return None
    kinds = {suffix.split(".")[1]: suffix for suffix in (SIMILAR_SUFFIX, UNANSWERABLE_SUFFIX)}
    close = difflib.get_close_matches(parts[-2], kinds, n=1, cutoff=0.6)
    return kinds[close[0]] if close else None


def load_knowledge(folder: Path, skip_bad: bool = False, limits: FileLimits | None = None) -> Knowledge:
    """Read every knowledge file of a folder. A bad file stops the load (KnowledgeError), or with
    ``skip_bad`` is reported in ``skipped`` while the rest is served. ``limits``: the largest
    file of each kind (default: ``FileLimits.from_env()``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KnowledgeError(folder, "knowledge folder not found")
    try:
        limits = limits or FileLimits.from_env()
    except ValueError as error:
        raise KnowledgeError(folder, str(error)) from None
    inside = folder.resolve()
    passages: list[Passage] = []
    notices: list[str] = []
    skipped: list[str] = []
    encodings: dict[str, str] = {}
    similar_files: list[tuple[Path, str]] = []
    topics: list[Topic] = []
    warnings: list[str] = []
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if _is_knowledge_file(p)):
        try:
            if not path.resolve().is_relative_to(inside):
                raise KnowledgeError(path, "a link to a file outside the knowledge folder; refused")
            data = read_bytes(path, limits.of(path))
            digest.update(f"{path.name}\0{len(data)}\0".encode("utf-8") + data)
            text, encodings[path.name] = decode(path, data)
            name = path.name.lower()
            if misspelt := _misspelt_data_suffix(name):
                warnings.append(f"{path.name}: read as an article; did you mean {misspelt}?")
            if name.endswith(SIMILAR_SUFFIX):
                similar_files.append((path, text))
            elif name.endswith(UNANSWERABLE_SUFFIX):
                topics += read_unanswerable(path, text)
            elif name.endswith(".csv"):
                passages += read_qa_csv(path, text)
            elif name.endswith(".jsonl"):
                passages += read_qa_jsonl(path, text)
            else:
                article = split_article(path.name, text)
                passages += article.passages
                notices += [n for n in article.notices if n not in notices]
                warnings += [f"{path.name}: 「{heading}」 has no text under it and is left out (a one-line answer "
                             "needs 。 at its end, or it reads as a heading)" for heading in article.left_out]
        except KnowledgeError as error:
            if not skip_bad:
                raise
            digest.update(f"{path.name}\0skipped\0".encode("utf-8"))
            skipped.append(str(error))
    passages, renamed = unique_ids(passages)
    warnings += renamed
    for path, text in similar_files:
        try:
            passages, left_out = attach_similar(passages, path, read_similar(path, text), skip_bad)
            skipped += left_out
        except KnowledgeError as error:
            if not skip_bad:
                raise
            skipped.append(str(error))
    if not passages:
        raise KnowledgeError(folder, "no usable passage in the knowledge folder")
    asked = {question: p for p in passages for question in p.similar}
    warnings += [f"「{q}」 is both a similar question of [{asked[q].headings[-1]}] and an out-of-scope example of "
                 f"[{topic.name}]; keep it in one" for topic in topics for q in topic.questions if q in asked]
    for warning in warnings:
        log.warning("%s", warning)
    return Knowledge(tuple(passages), tuple(notices), tuple(skipped), encodings, digest.hexdigest(), tuple(warnings),
                     tuple(topics))


def unique_ids(passages: list[Passage]) -> tuple[list[Passage], list[str]]:
    """Passages whose ids repeat an earlier one's (a repeated Q&A row; ``a.txt`` beside ``a.md``)
    get ``-2``, ``-3``… in reading order, so that every passage stays addressable and the same
    folder always gives the same ids; one warning per renamed passage, naming both places."""
    first: dict[str, Passage] = {}
    taken = {passage.id for passage in passages}
    out, warnings = [], []
    for passage in passages:
        original = first.setdefault(passage.id, passage)
        if original is not passage:
            number = 2
            while f"{passage.id}-{number}" in taken:
                number += 1
            new_id = f"{passage.id}-{number}"
            taken.add(new_id)
            warnings.append(f"{passage.source}: passage \"{passage.question[:60]}\" has the id {passage.id} of a "
                            f"passage in {original.source}; it is {new_id} instead")
            passage = replace(passage, id=new_id)
        out.append(passage)
    return out, warnings
