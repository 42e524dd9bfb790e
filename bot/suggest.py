"""``faqbot report --suggest``: what users asked that the bot could not answer, grouped by
meaning, each group with a proposal: the passage it most likely belongs to (its wordings drafted
as similar questions) or "no passage covers this" (a topic to write). Taps on a clarification's
choices are drafts too: the user said which passage the question meant.

Grouping runs in two stages so that 10,000 log entries stay cheap. Words first
(``feedback.partition_by_words``, O(n log n)): identical and near-identical wordings become one
group. Then meaning: the most frequent wording of each of the ``MAX_CLUSTERED`` largest word
groups is encoded (the encoder is the cost, about 1,000 short questions in 10-30 s), and average
linkage merges groups while their mean cosine is at least ``MEANING_CUT``. Smaller word groups
beyond the cap stay grouped by words only, and the report says how many. Without an encoder the
word groups are the groups.

e5's cosines between any two questions about 借呗 sit between 0.85 and 1, so the vectors are
first centred on the mean of the knowledge's own questions (what every question of this domain
shares) and normalised again; paraphrases then meet at about 0.5 and more, unrelated questions
of the same domain mostly stay under 0.45.

Nothing here writes to the knowledge: ``render_drafts`` makes a ``*.similar.txt`` whose
questions are commented out, for a person to uncomment.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .feedback import (PICKED, REPORT_HEADER, Group, partition_by_words, read_log, render_group, summarise,
                       unanswered, visible, within_days, wordings)
from .knowledge import Passage

MAX_CLUSTERED = 1000  # word groups (largest first) merged by meaning; the rest stay grouped by words
MEANING_CUT = 0.5  # average centred cosine at which two groups of wordings ask the same thing
MAX_PROPOSED_WORDINGS = 8  # a group's wordings asked of the retrievers when proposing its passage
MIN_SHARE = 0.3  # of the fused softmax, averaged over a group's wordings: below it no passage is proposed
MAX_DRAFTS = 10  # wordings drafted per passage


@dataclass(frozen=True)
class Suggestion:
    """One group of unanswered questions and what the maintainer could do with it: add
    ``drafts`` as similar questions of ``passage``, or, when ``passage`` is None, write a passage
    (or add them to the unanswerable examples of ``topic``, the nearest one)."""

    group: Group
    passage: Passage | None
    share: float  # the passage's mean softmax share over the group's wordings
    topic: str | None
    drafts: tuple[str, ...]


@dataclass(frozen=True)
class Taps:
    """Questions whose clarification a user answered by tapping ``passage``."""

    passage: Passage
    drafts: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class Suggestions:
    suggestions: tuple[Suggestion, ...]
    taps: tuple[Taps, ...]
    by_meaning: bool  # False: the encoder is off, groups are by words alone
    words_only: int  # word groups past ``MAX_CLUSTERED``, not merged by meaning


def partition_by_meaning(entries: list[dict], faq) -> tuple[list[list[dict]], int]:
    """Entries grouped by words, then the ``MAX_CLUSTERED`` largest word groups merged by
    meaning; also how many word groups were left as they are."""
    groups = sorted(partition_by_words(entries, faq.index.tokenizer), key=len, reverse=True)
    if faq.dense is None or len(groups) < 2:
        return groups, 0
    head, tail = groups[:MAX_CLUSTERED], groups[MAX_CLUSTERED:]
    vectors = centred(faq, [wordings(group)[0] for group in head])
    merged = [[entry for n in members for entry in head[n]] for members in average_linkage(vectors, MEANING_CUT)]
    return merged + tail, len(tail)


def centred(faq, texts: Sequence[str]) -> np.ndarray:
    """Unit vectors of ``texts`` less the mean of the knowledge's questions (passages' and
    out-of-scope examples', already in the vector store), normalised again."""
    store, encoder = faq.dense.store, faq.dense.encoder
    known = [text for p in faq.knowledge.passages for text in (p.question, *p.similar)]
    known += [text for topic in faq.knowledge.topics for text in topic.questions]
    mean = store.vectors(encoder, "query", known).mean(axis=0)
    vectors = store.vectors(encoder, "query", list(texts)) - mean
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def average_linkage(vectors: np.ndarray, cut: float) -> list[list[int]]:
    """Agglomerative clustering: the two clusters of highest mean pairwise cosine merge until
    none reaches ``cut``. O(k²) memory and O(k²) a merge, for k ≤ ``MAX_CLUSTERED`` rows."""
    count = len(vectors)
    similarity = (vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    sizes = np.ones(count)
    members: list[list[int] | None] = [[n] for n in range(count)]
    for _ in range(count - 1):  # at most every row into one cluster
        i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[i, j] < cut:
            break
        i, j = min(i, j), max(i, j)  # the earlier (larger) group keeps its place
        row = (sizes[i] * similarity[i] + sizes[j] * similarity[j]) / (sizes[i] + sizes[j])
        similarity[i, :], similarity[:, i] = row, row
        similarity[j, :], similarity[:, j] = -np.inf, -np.inf
        similarity[i, i] = -np.inf
        sizes[i] += sizes[j]
        members[i] += members[j]
        members[j] = None
    return [found for found in members if found is not None]


def propose(faq, found: list[dict]) -> Suggestion:
    """The passage a group most likely belongs to: the highest mean softmax share of the fused
    ranking over its wordings, among passages the group's users did not reject (👎 or "都不是" in
    at least half of its entries). None when that share is under ``MIN_SHARE`` or most wordings
    belong elsewhere (``_outside``); then the nearest out-of-scope topic, if any, is named."""
    asked = wordings(found)[:MAX_PROPOSED_WORDINGS]
    signals = [faq.signals(question) for question in asked]
    signals = [s for s in signals if s.tokens]
    group = summarise(found)
    if not signals:
        return Suggestion(group, None, 0.0, None, ())
    shares = np.mean([_softmax(faq.fused(s)) for s in signals], axis=0)
    rejected = Counter(shown for entry in found if entry.get("kind") in ("downvote", "none_of_these")
                       for shown in set(entry.get("shown") or ()))
    number_of = {p.id: n for n, p in enumerate(faq.index.passages)}
    for passage_id, times in rejected.items():
        if passage_id in number_of and times * 2 >= len(found):
            shares[number_of[passage_id]] = 0.0
    best = int(np.argmax(shares))
    outside = [s for s in signals if _outside(faq, s, best)]
    if shares[best] >= MIN_SHARE and len(outside) * 2 < len(signals):
        passage = faq.index.passages[best]
        return Suggestion(group, passage, float(shares[best]), None, _new_wordings(passage, wordings(found)))
    topics = Counter(s.outside_topic for s in outside if s.outside_topic is not None)
    topic = faq.knowledge.topics[topics.most_common(1)[0][0]].name if topics else None
    return Suggestion(group, None, float(shares[best]), topic, ())


def _softmax(scores: np.ndarray) -> np.ndarray:
    exponentials = np.exp(scores - scores.max())
    return exponentials / exponentials.sum()


def _outside(faq, signals, best: int) -> bool:
    """Whether the question belongs elsewhere than passage ``best``: it names a sibling product the
    passage never speaks of (the rule the decision keeps beside its model), or it is nearer an
    out-of-scope example than the passage, by meaning (its questions' best cosine) with the encoder,
    by the share of its words covered without."""
    if faq.index.names_a_sibling(signals.tokens, best):
        return True
    if signals.dense:
        return signals.outside_topic is not None and signals.outside_dense > float(signals.retrievers["dense_questions"][best])
    return signals.outside_coverage >= faq.index.coverage(signals.tokens, faq.index.vocabulary(best))


def _new_wordings(passage: Passage, asked: Sequence[str]) -> tuple[str, ...]:
    """Wordings the passage does not hold yet, at most ``MAX_DRAFTS``."""
    known = {passage.question, *passage.headings, *passage.similar}
    return tuple(question for question in asked if question and question not in known)[:MAX_DRAFTS]


def tapped(faq, entries: list[dict]) -> list[Taps]:
    """Clarification taps per passage picked (one still in the knowledge), most tapped first."""
    by_id = {p.id: p for p in faq.index.passages}
    picks: dict[str, list[dict]] = {}
    for entry in entries:
        shown = entry.get("shown") or ()
        if entry.get("kind") == PICKED and len(shown) == 1 and shown[0] in by_id:
            picks.setdefault(shown[0], []).append(entry)
    taps = [Taps(by_id[pid], _new_wordings(by_id[pid], wordings(found)), len(found)) for pid, found in picks.items()]
    return sorted((t for t in taps if t.drafts), key=lambda t: (-t.count, t.passage.id))


def suggest(faq, entries: list[dict], top: int = 20) -> Suggestions:
    """Groups of the unanswered entries by meaning, the ``top`` largest with a proposal, and
    the taps' drafts."""
    groups, words_only = partition_by_meaning(unanswered(entries), faq)
    ordered = sorted(groups, key=_order)
    return Suggestions(tuple(propose(faq, found) for found in ordered[:top]), tuple(tapped(faq, entries)),
                       faq.dense is not None, words_only)


def _order(found: list[dict]) -> tuple:
    """Most frequent first, then asked in the most chats (as ``feedback.by_size``)."""
    group = summarise(found)
    return -group.count, -group.chats, group.example


def key_of(passage: Passage) -> str:
    """How a ``*.similar.txt`` names the passage: its id, which never names two."""
    return passage.id


def render_suggestions(result: Suggestions) -> str:
    """The report: each group's counts and wordings, then the proposal."""
    if not result.suggestions and not result.taps:
        return "日志里没有未回答、被点踩或点选澄清的问题。"
    how = "按意思分组（句向量 + 平均连接聚类）" if result.by_meaning else "按用词分组（句向量未启用）"
    lines = [how + (f"；另有 {result.words_only} 个较小的组只按用词分组" if result.words_only else ""), ""]
    if result.suggestions:
        lines.append(REPORT_HEADER)
    for suggestion in result.suggestions:
        lines += render_group(suggestion.group)
        lines.append(f"{'':>8}→ {_proposal(suggestion)}")
    if result.taps:
        lines += ["", "用户在澄清里点选的资料（问法可作为相似问）："]
        for taps in result.taps:
            lines.append(f"  [{visible(taps.passage.question)}] ← {taps.count} 次：" + "；".join(visible(q) for q in taps.drafts))
    return "\n".join(lines)


def _proposal(suggestion: Suggestion) -> str:
    if suggestion.passage is not None:
        return f"作为相似问加到「{visible(suggestion.passage.question)}」（把握 {suggestion.share:.2f}）"
    if suggestion.topic:
        return f"已按不答话题 [{visible(suggestion.topic)}] 回复；若资料应该回答它，写一段新资料，并删掉该话题里相近的例子"
    return "没有资料讲这个：写一段新资料，或加到 *.unanswerable.txt"


def render_brief(result: Suggestions, top: int = 5) -> str:
    """The ``top`` largest groups, two lines each (a chat message): wording, counts, proposal."""
    if not result.suggestions:
        return "这段时间没有未回答或被点踩的问题。"
    return "\n".join(f"{n}. {visible(s.group.example)}（{s.group.count} 次，{s.group.chats} 个会话）\n   → {_proposal(s)}"
                     for n, s in enumerate(result.suggestions[:top], start=1))


def recent_report(faq, log: Path, days: float = 7, top: int = 5) -> str:
    """Telegram's ``/report``: the ``top`` largest groups of the last ``days`` days, as text."""
    return render_brief(suggest(faq, within_days(read_log(log), days), top), top)


def render_drafts(result: Suggestions) -> str:
    """A ``*.similar.txt`` of the proposals: ``[passage id]`` lines live, every question
    commented out (``# ``), so the file loads as it is and adds nothing until a person
    uncomments the wordings that are right. Topics to write are listed as comments."""
    drafts: dict[str, tuple[Passage, list[str]]] = {}
    for passage, questions in [(s.passage, s.drafts) for s in result.suggestions if s.passage is not None] + \
                              [(t.passage, list(t.drafts)) for t in result.taps]:
        kept = drafts.setdefault(passage.id, (passage, []))[1]
        kept += [q for q in questions if q not in kept]
    lines = ["# 相似问草稿（faqbot report --suggest --write）：确认无误的问法去掉行首的 \"# \" 再放进 knowledge/。",
             "# 只收用户原话；不要从评测题里抄。", ""]
    for passage, questions in drafts.values():
        lines += [f"# {visible(passage.question)}", f"[{key_of(passage)}]", *(f"# {visible(q)}" for q in questions), ""]
    uncovered = [s for s in result.suggestions if s.passage is None]
    if uncovered:
        lines.append("# 没有资料讲的话题（写一段新资料，或加到 *.unanswerable.txt）：")
        lines += [f"#   {visible(s.group.example)}（{s.group.count} 次）" for s in uncovered]
    return "\n".join(lines) + "\n"


def write_drafts(path: Path, text: str) -> None:
    """A new file of drafts, private (0600: it holds users' words); an existing file is never
    overwritten (FileExistsError naming it), nor a link followed."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise FileExistsError(f"{path} already exists; name a new file for the drafts") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
