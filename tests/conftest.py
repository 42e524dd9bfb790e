import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.faq import FAQ

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
SHARED = ROOT.parent / "shared"
CONTRACT_KEYS = {"question", "answered", "clarify", "results", "disclaimer", "refusal", "notes"}  # ask --json


@pytest.fixture(scope="session", autouse=True)
def private_folders(tmp_path_factory):
    """Tests never read or write the user's index cache, logs or console history: both live under
    pytest's own temporary folder (so two runs side by side never share a file), for the whole
    session and for every child process a test starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAQBOT_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("FAQBOT_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
        yield


@pytest.fixture(scope="session")
def faq(private_folders) -> FAQ:
    return FAQ.load(KNOWLEDGE)


@pytest.fixture
def index_builds(monkeypatch, tmp_path) -> list:
    """Counts index builds (BM25 over passages and out-of-scope examples), with a cache folder of
    the test's own."""
    from bot import search

    monkeypatch.setenv("FAQBOT_CACHE", str(tmp_path / "cache"))
    builds: list = []
    original = search.Index.__init__

    def counting(self, *args, **kwargs):
        builds.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(search.Index, "__init__", counting)
    return builds


def run_faqbot(*args: str, stdin: str | None = None, env: dict | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """The real command line, in a child process (what a user or a script runs)."""
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, encoding="utf-8", env=full_env, timeout=timeout, cwd=ROOT,
    )
