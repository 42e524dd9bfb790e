"""Settings from flags and environment variables, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

MAX_FALSE_ANSWERS = 0.13  # the shipped strictness (out-of-scope questions answered), which `faqbot calibrate` reproduces


def shipped_knowledge() -> Path:
    """The knowledge folder installed with the package (``knowledge/`` of the project)."""
    spec = find_spec("faqbot_knowledge")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "knowledge"


@dataclass(frozen=True)
class Settings:
    knowledge: Path
    top_k: int = 3
    skip_bad: bool = False

    @classmethod
    def from_env(cls, knowledge: str | None = None, top_k: int | None = None, skip_bad: bool = False) -> "Settings":
        folder = knowledge or os.environ.get("FAQBOT_KNOWLEDGE") or shipped_knowledge()
        return cls(Path(folder), top_k if top_k is not None else 3, skip_bad)
