"""The pure core wired together: a knowledge folder becomes an object that answers questions.
Both front ends hold one of these and nothing else of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .knowledge import Knowledge, load_knowledge
from .reply import Answer, Messages, compose
from .search import Index

MAX_QUESTION_CHARS = 1000


@dataclass(frozen=True)
class FAQ:
    knowledge: Knowledge
    index: Index
    messages: Messages

    @classmethod
    def load(cls, folder: Path, skip_bad: bool = False) -> "FAQ":
        knowledge = load_knowledge(folder, skip_bad=skip_bad)
        return cls(knowledge, Index(knowledge.passages), Messages.load())

    def ask(self, question: str, top_k: int = 3) -> Answer:
        """Answer one question; an over-long one is answered on its first 1,000 characters."""
        question = question if isinstance(question, str) else str(question)
        shortened = len(question) > MAX_QUESTION_CHARS
        asked = question[:MAX_QUESTION_CHARS] if shortened else question
        answer = compose(self.index.search(asked, k=max(top_k, 1)), self.messages, max_results=top_k)
        if shortened:
            note = f"（问题较长，只按前 {MAX_QUESTION_CHARS} 个字回答。）"
            answer = replace(answer, question=question, notes=(note, *answer.notes))
        return answer
