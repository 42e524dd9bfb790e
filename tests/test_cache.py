"""The index cache makes a second start cheap, never makes a start fail or hang, and can never run
code: it is data only, read from a folder and files of this user's that no one else can write."""

import json
import logging
import os
import pickle
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from bot import faq as faq_module
from bot.faq import FAQ

from conftest import KNOWLEDGE, ROOT

QUESTION = "借呗升级失败怎么办"
ADDED = "\n补充说明\n借呗账单显示延迟时请稍后刷新页面再查看。\n"


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, copy)
    return copy


def load(folder) -> FAQ:
    return FAQ.load(folder, semantic=False)  # the index cache alone: the encoder is not what is tested


def cache_files(tmp_path) -> list:
    """The index cache files the bot wrote under the name it computes (not its temporary files)."""
    files = sorted((tmp_path / "cache").glob("index-*"))
    assert files, "the first start wrote no index cache"
    return files


def cache_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.cache" and r.levelno >= logging.WARNING]


class Planted:
    """What someone else plants under the cache's name: unpickling it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_changing_any_knowledge_file_rebuilds(index_builds, folder):
    load(folder)
    article = next(folder.glob("001_*.txt"))
    article.write_text(article.read_text(encoding="utf-8") + ADDED, encoding="utf-8")
    faq = load(folder)
    assert len(index_builds) == 2
    assert any("稍后刷新" in p.answer for p in faq.knowledge.passages)


def test_a_file_changed_while_the_bot_starts_is_never_served_stale(index_builds, folder, monkeypatch):
    """The key is the hash of the bytes that were indexed: an edit landing between the key and the
    read cannot leave an index of the new text under the old text's key."""
    article = next(folder.glob("001_*.txt"))
    original = article.read_text(encoding="utf-8")
    real_load_knowledge = faq_module.load_knowledge
    edits = []

    def edited_meanwhile(*args, **kwargs):
        if not edits:  # someone saves the article just as the bot starts reading the folder
            edits.append(1)
            article.write_text(original + ADDED, encoding="utf-8")
        return real_load_knowledge(*args, **kwargs)

    monkeypatch.setattr(faq_module, "load_knowledge", edited_meanwhile)
    assert any("稍后刷新" in p.answer for p in load(folder).knowledge.passages)
    article.write_text(original, encoding="utf-8")  # the edit is undone
    faq = load(folder)
    assert not any("稍后刷新" in p.answer for p in faq.index.passages)
    assert not any("稍后刷新" in " ".join(d) for d in faq.index.documents)
    assert len(index_builds) == 2 and faq.ask(QUESTION).answered


def test_a_corrupt_cache_file_is_rebuilt_not_fatal(index_builds, folder, tmp_path, caplog):
    load(folder)
    for cache_file in cache_files(tmp_path):
        cache_file.write_bytes(b"not a cache file at all")
    faq = load(folder)
    assert len(index_builds) == 2 and faq.ask(QUESTION).answered
    assert len(cache_warnings(caplog)) == 1 and "rebuilding" in caplog.text


def test_a_planted_pickle_under_the_cache_name_is_never_run(index_builds, folder, tmp_path, caplog):
    load(folder)
    marker = tmp_path / "code-was-run"
    for cache_file in cache_files(tmp_path):
        cache_file.write_bytes(pickle.dumps(Planted(marker)))
    faq = load(folder)
    assert not marker.exists()
    assert faq.ask(QUESTION).answered and len(index_builds) == 2
    assert len(cache_warnings(caplog)) == 1
    again = load(folder)  # the planted file was replaced by a real cache
    assert len(index_builds) == 2 and again.ask(QUESTION).answered and not marker.exists()
    # Nor inside an .npz: numpy pickles arrays of objects, and the cache never reads one.
    planted = np.empty(1, dtype=object)
    planted[0] = Planted(marker)
    for cache_file in cache_files(tmp_path):
        with open(cache_file, "wb") as handle:
            np.savez(handle, tokens=planted, owner=planted)
    faq = load(folder)
    assert not marker.exists()
    assert faq.ask(QUESTION).answered and len(index_builds) == 3 and len(cache_warnings(caplog)) == 2


def test_an_index_read_back_from_its_arrays_ranks_exactly_as_the_one_built(faq):
    """What the cache stores is the whole index: the same scores, ranks, coverage and scope signals."""
    from bot.search import BM25Plus, Index

    arrays, meta = faq.index.to_arrays()
    back = Index.from_arrays(arrays, json.loads(json.dumps(meta)), faq.knowledge.passages, faq.knowledge.topics)
    assert back.documents == faq.index.documents and back._outside_words == faq.index._outside_words
    for question in [QUESTION, "借呗额度异常，账单也没生成", "花呗怎么还款", "今天天气怎么样", "借呗关闭了还能开通吗"]:
        tokens = faq.index.question_tokens(question)
        assert np.array_equal(back.passage_scores(tokens), faq.index.passage_scores(tokens))
        assert back.top(tokens, 5) == faq.index.top(tokens, 5)
        information = faq.index.information(set(tokens))
        assert back.outside(tokens, information) == faq.index.outside(tokens, information)
    # A corpus large enough for words stored as full rows (DENSE_MIN_DOCUMENTS).
    rng = np.random.default_rng(1)
    corpus = [[f"w{n}" for n in rng.integers(0, 400, 8)] + ["common"] for _ in range(5000)]
    engine = BM25Plus(corpus, weights=rng.random(5000))
    assert engine.dense
    again = BM25Plus.from_arrays(*engine.to_arrays())
    for query in (["common", "w1"], ["w3", "unknown"], ["common"]):
        assert np.array_equal(again.scores(query), engine.scores(query)) and again.top(query, 5) == engine.top(query, 5)


def _wrong_shapes(cache_file, change: str) -> None:
    """A readable cache file of the right format that is not the index this knowledge needs."""
    if cache_file.suffix == ".pickle":  # the format before data-only caches: a valid pickle of another type
        cache_file.write_bytes(pickle.dumps({"not": "an index"}))
        return
    with np.load(cache_file, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    if change == "out of range":
        arrays["tokens"] = arrays["tokens"] + 10**6
    elif change == "missing":
        del arrays["owner"]
    elif change == "other type":
        arrays["offsets"] = arrays["offsets"].astype(np.float64)
    elif change == "other shape":
        arrays["engine.dense_rows"] = np.zeros((3, 2), dtype=np.float32)
    elif change == "other knowledge":
        arrays["meta.json"] = np.frombuffer(b'{"passages": 1, "topics": 0}', dtype=np.uint8)
    elif change == "not JSON":
        arrays["meta.json"] = np.frombuffer(b"\xff{", dtype=np.uint8)
    with open(cache_file, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("change", ["out of range", "missing", "other type", "other shape", "other knowledge", "not JSON"])
def test_a_valid_cache_file_of_the_wrong_shape_is_rebuilt_with_one_warning(index_builds, folder, tmp_path, caplog, change):
    load(folder)
    for cache_file in cache_files(tmp_path):
        _wrong_shapes(cache_file, change)
    faq = load(folder)
    assert faq.ask(QUESTION).answered and len(index_builds) == 2
    assert len(cache_warnings(caplog)) == 1


def test_a_fifo_at_the_cache_path_does_not_hang_the_start(folder, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "FAQBOT_CACHE": str(cache), "FAQBOT_SEMANTIC": "off", "PYTHONIOENCODING": "utf-8"}
    script = "import sys; from bot.faq import FAQ; print(FAQ.load(sys.argv[1]).ask(sys.argv[2]).answered)"
    command = [sys.executable, "-c", script, str(folder), QUESTION]
    assert subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    for cache_file in cache_files(tmp_path):
        cache_file.unlink()
        os.mkfifo(cache_file, 0o600)
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
    assert "rebuilding" in result.stderr


def test_a_link_at_the_cache_path_is_not_followed(index_builds, folder, tmp_path, caplog):
    load(folder)
    for cache_file in cache_files(tmp_path):
        elsewhere = tmp_path / cache_file.name
        cache_file.rename(elsewhere)
        cache_file.symlink_to(elsewhere)
    assert load(folder).ask(QUESTION).answered and len(index_builds) == 2
    assert len(cache_warnings(caplog)) == 1


def test_a_cache_file_others_can_write_is_not_used(index_builds, folder, tmp_path, caplog):
    load(folder)
    for cache_file in cache_files(tmp_path):
        cache_file.chmod(0o666)
    assert load(folder).ask(QUESTION).answered and len(index_builds) == 2
    assert len(cache_warnings(caplog)) == 1
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in cache_files(tmp_path))  # replaced by our own


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of another user's can only be made as root")
def test_a_cache_file_of_another_user_is_not_used(index_builds, folder, tmp_path, caplog):
    load(folder)
    for cache_file in cache_files(tmp_path):
        os.chown(cache_file, 65534, 65534)
    assert load(folder).ask(QUESTION).answered and len(index_builds) == 2
    assert len(cache_warnings(caplog)) == 1


def _shared_folder(tmp_path, index_builds, folder):
    """A folder holding a valid cache of this very knowledge (so using it would skip the build)."""
    load(folder)
    shared = tmp_path / "shared"
    shared.mkdir()
    for cache_file in cache_files(tmp_path):
        shutil.copy2(cache_file, shared / cache_file.name)
    return shared


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770])
def test_a_cache_folder_others_can_write_is_not_used(index_builds, folder, tmp_path, caplog, monkeypatch, mode):
    shared = _shared_folder(tmp_path, index_builds, folder)
    shared.chmod(mode)
    monkeypatch.setenv("FAQBOT_CACHE", str(shared))
    before = sorted(os.listdir(shared))
    for _ in range(2):  # a reload: still refused, said once
        assert load(folder).ask(QUESTION).answered
    assert len(index_builds) == 3
    assert sorted(os.listdir(shared)) == before  # nothing written there either
    assert len(cache_warnings(caplog)) == 1 and "refused" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="a folder of another user's can only be made as root")
def test_a_cache_folder_of_another_user_is_not_used(index_builds, folder, tmp_path, caplog, monkeypatch):
    shared = _shared_folder(tmp_path, index_builds, folder)
    shared.chmod(0o755)
    os.chown(shared, 65534, 65534)
    monkeypatch.setenv("FAQBOT_CACHE", str(shared))
    assert load(folder).ask(QUESTION).answered and len(index_builds) == 2
    assert len(cache_warnings(caplog)) == 1 and "refused" in caplog.text


def test_the_cache_is_private_and_written_whole(index_builds, folder, tmp_path, monkeypatch):
    monkeypatch.setenv("FAQBOT_CACHE", str(tmp_path / "new" / "cache"))
    load(folder)
    cache = tmp_path / "new" / "cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = os.listdir(cache)
    assert len(files) == 1 and files[0].startswith("index-") and files[0].endswith(".npz")  # no temporary left
    assert stat.S_IMODE((cache / files[0]).stat().st_mode) == 0o600
    with np.load(cache / files[0], allow_pickle=False) as data:  # data only: loads without pickle
        assert all(data[name].dtype != object for name in data.files)


def test_the_cache_key_reads_no_knowledge_file_before_its_size_is_checked(folder, monkeypatch):
    """An oversized file is refused before a byte of it is read: no separate fingerprint reads it whole."""
    with open(folder / "huge.txt", "wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: no disk used
    monkeypatch.setenv("FAQBOT_MAX_FILE_MB", "5")
    read = []
    original = type(folder).read_bytes

    def recording(path):
        read.append(path)
        return original(path)

    monkeypatch.setattr(type(folder), "read_bytes", recording)
    faq = FAQ.load(folder, skip_bad=True, semantic=False)
    assert faq.ask(QUESTION).answered and any("huge.txt" in s for s in faq.knowledge.skipped)
    assert not [p for p in read if folder in p.parents]


def test_an_unwritable_cache_folder_still_serves(monkeypatch, folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("FAQBOT_CACHE", str(blocker / "sub"))
    assert load(folder).ask(QUESTION).answered


def test_each_knowledge_folder_keeps_its_vectors_in_a_private_file_of_its_own_and_only_the_latest_stay(
        tmp_path, monkeypatch):
    from bot import cache

    monkeypatch.setenv("FAQBOT_CACHE", str(tmp_path / "cache"))
    paths = [cache.vector_cache_path(tmp_path / f"knowledge-{n}", "encoder") for n in range(cache.KEEP + 3)]
    assert len(set(paths)) == len(paths) and {p.parent for p in paths} == {tmp_path / "cache"}
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert cache.vector_cache_path(tmp_path / "knowledge-0", "encoder") == paths[0]  # edits keep the same file
    assert cache.vector_cache_path(tmp_path / "knowledge-0", "another encoder") != paths[0]
    for n, path in enumerate(paths):
        path.write_bytes(b"vectors")
        os.utime(path, (1_000_000 + n, 1_000_000 + n))  # knowledge-0 the least recently used
    cache.vector_cache_path(tmp_path / "knowledge-0", "encoder")  # used again: now the most recent
    kept = set((tmp_path / "cache").glob("vectors-*.npz"))
    assert len(kept) == cache.KEEP and paths[0] in kept and not kept & set(paths[1:4])
