"""The pure core wired together: a knowledge folder becomes an object that answers questions.
Both front ends hold one of these and nothing else of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .cache import cached
from .knowledge import Knowledge, load_knowledge
from .reply import Answer, Messages, compose, distinct
from .search import Index

MAX_QUESTION_CHARS = 1000
SPARE_HITS = 5  # fetched beyond what is shown, for the passages ``distinct`` drops


@dataclass(frozen=True)
class FAQ:
    knowledge: Knowledge
    index: Index
    messages: Messages

    @classmethod
    def load(
        cls,
        folder: Path,
        skip_bad: bool = False,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> "FAQ":
        """Read and index a knowledge folder, or load its index from the cache (``bot.cache``);
        ``progress(done, total)`` hears how the indexing goes."""

        def build() -> tuple[Knowledge, Index]:
            knowledge = load_knowledge(folder, skip_bad=skip_bad)
            return knowledge, Index(knowledge.passages, progress=progress)

        knowledge, index = cached(Path(folder), skip_bad, build) if use_cache else build()
        return cls(knowledge, index, Messages.load().with_notices(knowledge.notices))

    def ask(self, question: str, top_k: int = 3) -> Answer:
        """Answer one question; an over-long one is answered on its first 1,000 characters."""
        question = question if isinstance(question, str) else str(question)
        shortened = len(question) > MAX_QUESTION_CHARS
        asked = question[:MAX_QUESTION_CHARS] if shortened else question
        answer = compose(self.index.search(asked, k=top_k + SPARE_HITS), self.messages, max_results=top_k)
        if shortened:
            note = self.messages.long_question.format(limit=MAX_QUESTION_CHARS)
            answer = replace(answer, question=question, notes=(note, *answer.notes))
        return answer

    def more(self, question: str, shown: int, count: int = 3) -> Answer:
        """The next ``count`` passages after the ``shown`` first ones, for a "more results" button;
        refused when nothing further matches or the question itself is refused."""
        result = self.index.search(question[:MAX_QUESTION_CHARS], k=shown + count + SPARE_HITS)
        if not result.answered:
            return compose(result, self.messages)
        hits = distinct(result.hits)
        further = tuple(hits[shown:shown + count])
        return Answer(question, bool(further), further, (), self.messages, result.hits[0].score,
                      len(hits) > shown + count)
