"""The index cache makes a second start cheap and never makes a start fail."""

import shutil

import pytest

from bot.faq import FAQ

from conftest import KNOWLEDGE


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, copy)
    return copy


def test_changing_any_knowledge_file_rebuilds(index_builds, folder):
    FAQ.load(folder)
    article = next(folder.glob("001_*.txt"))
    article.write_text(article.read_text(encoding="utf-8") + "\n补充说明\n借呗账单显示延迟时请稍后刷新页面再查看。\n", encoding="utf-8")
    faq = FAQ.load(folder)
    assert len(index_builds) == 2
    assert any("稍后刷新" in p.answer for p in faq.knowledge.passages)


def test_a_corrupt_cache_file_is_rebuilt_not_fatal(index_builds, folder, tmp_path, caplog):
    FAQ.load(folder)
    for cache_file in (tmp_path / "cache").glob("index-*.pickle"):
        cache_file.write_bytes(b"not a pickle at all")
    faq = FAQ.load(folder)
    assert len(index_builds) == 2 and faq.ask("借呗升级失败怎么办").answered
    assert "rebuilding" in caplog.text


def test_an_unwritable_cache_folder_still_serves(monkeypatch, folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FAQBOT_CACHE", str(blocker / "sub"))
    assert FAQ.load(folder).ask("借呗升级失败怎么办").answered
