import os
import subprocess
import sys
from pathlib import Path

import tempfile

import pytest

# Tests never read or write the user's index cache, logs or console history.
os.environ["FAQBOT_CACHE"] = tempfile.mkdtemp(prefix="faqbot-test-cache-")
os.environ["FAQBOT_LOG_DIR"] = tempfile.mkdtemp(prefix="faqbot-test-logs-")

from bot.faq import FAQ  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def faq() -> FAQ:
    return FAQ.load(KNOWLEDGE)


@pytest.fixture
def index_builds(monkeypatch, tmp_path) -> list:
    """Counts BM25 index builds, with a cache folder of the test's own."""
    from bot import search

    monkeypatch.setenv("FAQBOT_CACHE", str(tmp_path / "cache"))
    builds: list = []
    original = search.BM25Plus.__init__

    def counting(self, *args, **kwargs):
        builds.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(search.BM25Plus, "__init__", counting)
    return builds


def run_faqbot(*args: str, stdin: str | None = None, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real command line, in a child process (what a user or a script runs)."""
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, encoding="utf-8", env=full_env, timeout=timeout, cwd=ROOT,
    )
