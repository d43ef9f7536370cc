"""Incremental index segments on the bundled data: engines side by side, then the served path.

Prints JSON (machine and load included). Three parts, each measured side by side in one run:

* ``bm25_engines``: the bundled patents analysed once with the one analyzer (jieba + Snowball), then fed to
  (a) bm25s 0.3 (what served BM25 until snapshot format 2; BM25+ baked into a score matrix), (b) tantivy (the
  PyPI package; whitespace tokenizer over the analysed tokens, its own BM25), (c) ours (``indexes.bm25``: term-count
  segments, BM25+ with statistics at query time). Build time, on-disk size, query p50/p99 over the
  query-latency queries, the cost of making ``--write`` new documents searchable (bm25s: a full rebuild; tantivy:
  add + commit + reload; ours: a new segment + re-opening the index), and top-10 agreement with bm25s.
* ``faiss_ids``: faiss ``IndexIDMap2(IndexFlatIP)`` ``add_with_ids`` / ``remove_ids`` of ``--write`` vectors against
  ours (a new flat segment; a delete is a mask).
* ``served``: a workspace of the bundled patents (``--dense-model``), then ``--steps`` flushes of random writes and
  deletes (``update_snapshot``), each timed by stage; top-10 of the query-latency queries against a full rebuild
  of the same store (identical ids, largest score difference); hybrid p99 with the resulting segments against the
  merged single segment, interleaved per query in one run; the full merge against a full build.

    python bench/segments.py --work /tmp/pm-seg --dense-model static-64
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import machine  # noqa: E402
from query_latency import QUERIES  # noqa: E402


def pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_patents(limit: int | None) -> list[Any]:
    from matcher.records import Patent

    with gzip.open(ROOT / "data" / "sample" / "patents.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [Patent.model_validate(json.loads(line)) for line in f]
    return rows[:limit] if limit else rows


def bm25_engines(patents: list[Any], work: Path, write: int, repeat: int) -> dict[str, Any]:
    import bm25s
    import tantivy

    from indexes.analyzer import AnalyzerConfig, get_analyzer
    from indexes.bm25 import BM25Index
    from indexes.bm25_segment import BM25Segment
    from indexes.term_counts import chunks, count_terms
    from matcher.texts import indexed_text

    analyzer = get_analyzer(AnalyzerConfig())
    t = time.perf_counter()
    tokens = analyzer.tokenize_many([indexed_text(p) for p in patents])
    tokenize_s = time.perf_counter() - t
    ids = [p.id for p in patents]
    base, extra = tokens[:-write], tokens[-write:]
    base_ids, extra_ids = ids[:-write], ids[-write:]
    queries = [analyzer.tokenize(q) for q in QUERIES]
    out: dict[str, Any] = {"documents": len(base), "write": write, "tokenize_s": round(tokenize_s, 2)}

    # bm25s, as served before (BM25+, k1 1.5, b 0.75, delta 1)
    def bm25s_build(tok: list[list[str]]) -> Any:
        r = bm25s.BM25(method="bm25+", k1=1.5, b=0.75, delta=1.0)
        r.index(tok, show_progress=False)
        return r

    t = time.perf_counter()
    ref = bm25s_build(base)
    b_build = time.perf_counter() - t
    ref.save(str(work / "bm25s"))
    vocab = ref.vocab_dict

    def bm25s_top(r: Any, q: list[str], names: list[str]) -> list[str]:
        known = [x for x in q if x in r.vocab_dict]
        if not known:
            return []
        scores = r.get_scores(known)
        order = np.lexsort((np.arange(scores.size), -np.round(scores, 6)))[:10]
        return [names[i] for i in order if scores[i] > scores.min() + 1e-9]

    # tantivy over the analysed tokens, whitespace-joined
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
    schema = builder.build()
    tdir = work / "tantivy"
    tdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    index = tantivy.Index(schema, path=str(tdir))
    writer = index.writer(heap_size=128_000_000, num_threads=1)
    for doc_id, tok in zip(base_ids, base, strict=True):
        writer.add_document(tantivy.Document(id=doc_id, body=" ".join(tok)))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    t_build = time.perf_counter() - t

    def tantivy_top(q: list[str]) -> list[str]:
        terms = [x for x in q if x]
        if not terms:
            return []
        searcher = index.searcher()
        query = tantivy.Query.boolean_query([(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", x))
                                             for x in terms])
        hits = searcher.search(query, 10).hits
        return [searcher.doc(addr)["id"][0] for _, addr in hits]

    # ours
    t = time.perf_counter()
    seg = BM25Segment.from_counts(base_ids, (count_terms(c) for c in chunks(base, 2000)), AnalyzerConfig())
    ours = BM25Index([seg])
    o_build = time.perf_counter() - t
    seg.save(work / "ours")

    lat: dict[str, list[float]] = {"bm25s": [], "tantivy": [], "ours": []}
    agree = {"tantivy": 0, "ours": 0}
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            a = bm25s_top(ref, q, base_ids)
            lat["bm25s"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            b = tantivy_top(q)
            lat["tantivy"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            c = [h.id for h in ours.search_terms([x for x in q if ours.df(x) > 0], 10)]
            lat["ours"].append((time.perf_counter() - t) * 1000)
            agree["tantivy"] += b == a
            agree["ours"] += c == a
    n_q = repeat * len(queries)
    del vocab
    # making `write` new documents searchable
    t = time.perf_counter()
    bm25s_build(base + extra)
    b_write = time.perf_counter() - t
    writer = index.writer(heap_size=128_000_000, num_threads=1)
    t = time.perf_counter()
    for doc_id, tok in zip(extra_ids, extra, strict=True):
        writer.add_document(tantivy.Document(id=doc_id, body=" ".join(tok)))
    writer.commit()
    index.reload()
    t_write = time.perf_counter() - t
    t = time.perf_counter()
    new_seg = BM25Segment.from_counts(extra_ids, [count_terms(extra)], AnalyzerConfig())
    BM25Index([seg, new_seg])
    o_write = time.perf_counter() - t
    out["engines"] = {
        "bm25s": {"build_s": round(b_build, 2), "disk_bytes": du(work / "bm25s"), "query": pct(lat["bm25s"]),
                  "write_searchable_s": round(b_write, 3), "incremental": False, "top10_agreement": 1.0},
        "tantivy": {"version": tantivy.__version__, "build_s": round(t_build, 2), "disk_bytes": du(tdir),
                    "query": pct(lat["tantivy"]), "write_searchable_s": round(t_write, 3), "incremental": True,
                    "top10_agreement": round(agree["tantivy"] / n_q, 3)},
        "ours": {"build_s": round(o_build, 2), "disk_bytes": du(work / "ours"), "query": pct(lat["ours"]),
                 "write_searchable_s": round(o_write, 3), "incremental": True,
                 "top10_agreement": round(agree["ours"] / n_q, 3)},
    }
    out["note"] = ("query times are scoring + top-10 over pre-analysed queries; tantivy is plain BM25 (k1 1.2, "
                   "b 0.75, Lucene idf, 1-byte length norms) and counts deleted documents in its statistics until "
                   "a merge; bm25s and ours are BM25+ (k1 1.5, b 0.75, delta 1)")
    return out


def faiss_ids(dim: int, n: int, write: int) -> dict[str, Any]:
    import faiss

    from indexes.dense import DenseIndex
    from indexes.dense_segments import SegmentedDense

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n + write, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, 50, replace=False)] + 0.1 * rng.standard_normal((50, dim)).astype(np.float32)
    idmap = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    idmap.add_with_ids(x[:n], np.arange(n, dtype=np.int64))
    t = time.perf_counter()
    idmap.add_with_ids(x[n:], np.arange(n, n + write, dtype=np.int64))
    add_s = time.perf_counter() - t
    gone = rng.choice(n, write, replace=False).astype(np.int64)
    t = time.perf_counter()
    idmap.remove_ids(faiss.IDSelectorArray(gone.size, faiss.swig_ptr(gone)))
    remove_s = time.perf_counter() - t
    ids = [str(i) for i in range(n + write)]
    base = DenseIndex.build(ids[:n], x[:n], index_type="flat")
    t = time.perf_counter()
    small = DenseIndex.build(ids[n:], x[n:], index_type="flat")
    seg_add = time.perf_counter() - t
    live = np.ones(n, dtype=bool)
    t = time.perf_counter()
    live[gone] = False
    both = SegmentedDense([base, small], [live, None])
    seg_remove = time.perf_counter() - t
    lat_f: list[float] = []
    lat_s: list[float] = []
    for row in q:
        t = time.perf_counter()
        idmap.search(row[None, :], 10)
        lat_f.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        both.search_positions(row[None, :], 10)
        lat_s.append((time.perf_counter() - t) * 1000)
    return {"vectors": n, "dim": dim, "write": write,
            "faiss_idmap": {"add_s": round(add_s, 4), "remove_s": round(remove_s, 4), "query": pct(lat_f)},
            "segments": {"add_s": round(seg_add, 4), "remove_s": round(seg_remove, 4), "query": pct(lat_s)},
            "note": "remove_ids on a flat IDMap compacts the arrays (O(n)); an IVF's remove_ids scans its lists; "
                    "neither is possible on a memory-mapped read-only index, which is how snapshots are served"}


def served(patents: list[Any], work: Path, dense: str | None, steps: int, seed: int, repeat: int) -> dict[str, Any]:
    from matcher.flush import update_snapshot
    from matcher.full_build import build_snapshot
    from matcher.merge import merge_segments
    from matcher.search import Searcher
    from matcher.store import Store
    from matcher.workspace import Workspace

    rng = random.Random(seed)
    hold = max(200, len(patents) // 20)
    base, pool = patents[:-hold], patents[-hold:]
    ws = Workspace(work / "segmented")
    with Store(ws.store_path) as store:
        store.write_batch("patents", base, "base")
    t = time.perf_counter()
    build_snapshot(ws, "patents", dense_model=dense)
    full_build_s = time.perf_counter() - t
    flushes = []
    taken = 0
    for step in range(steps):
        with Store(ws.store_path) as store:
            n_new = rng.randint(10, 100)
            new = pool[taken : taken + n_new]
            taken += len(new)
            ids = store.ids("patents")
            changed = [r for r in store.get_many("patents", rng.sample(ids, 5)).values()]
            changed = [r.model_copy(update={"title": r.title + "（修订）"}) for r in changed]
            store.write_batch("patents", new + changed, f"step{step}")
            store.delete("patents", rng.sample(store.ids("patents"), rng.randint(1, 20)))
        result = update_snapshot(ws, "patents", dense_model=dense)
        flushes.append({"added": len(result.added), "deleted": len(result.deleted), "seconds": result.seconds})
    manifest = ws.current_manifest("patents")
    assert manifest is not None
    # a full rebuild of the same store, in another workspace
    other = Workspace(work / "full")
    with Store(ws.store_path) as src, Store(other.store_path) as dst:
        dst.write_batch("patents", list(src.iter_records("patents")), "copy")
    build_snapshot(other, "patents", dense_model=dense)
    modes = ("bm25", "dense", "hybrid") if dense else ("bm25",)
    seg_s, full_s = Searcher(ws), Searcher(other)
    identical = {m: 0 for m in modes}
    worst = {m: 0.0 for m in modes}
    for q in QUERIES:
        for m in modes:
            a = seg_s.search_patents(q, 10, mode=m)  # type: ignore[arg-type]
            b = full_s.search_patents(q, 10, mode=m)  # type: ignore[arg-type]
            identical[m] += [r.id for r in a] == [r.id for r in b]
            if len(a) == len(b):
                worst[m] = max([worst[m], *(abs(x.score - y.score) for x, y in zip(a, b, strict=True))])
    full_s.close()
    # p99 with the segments vs one merged segment, interleaved per query, in one run
    merged_ws = Workspace(work / "merged")
    shutil.copytree(ws.home, merged_ws.home)
    t = time.perf_counter()
    merge_segments(merged_ws, "patents", dense_model=dense, force=True)
    merge_s = time.perf_counter() - t
    one = Searcher(merged_ws)
    mode = "hybrid" if dense else "bm25"
    for s in (seg_s, one):
        s.search_patents(QUERIES[0], 10, mode=mode)  # type: ignore[arg-type]
    lat: dict[str, list[float]] = {"segments": [], "single": []}
    for _ in range(repeat):
        for q in QUERIES:
            for name, s in (("segments", seg_s), ("single", one)):
                t = time.perf_counter()
                s.search_patents(q, 10, mode=mode)  # type: ignore[arg-type]
                lat[name].append((time.perf_counter() - t) * 1000)
    seg_s.close()
    one.close()
    p = {k: pct(v) for k, v in lat.items()}
    return {
        "documents": manifest.doc_count, "dense_model": dense, "segments": len(manifest.segments),
        "segment_sizes": [s.live_count for s in manifest.segments], "deleted": manifest.deleted_count,
        "full_build_s": round(full_build_s, 2), "flushes": flushes,
        "top10_identical": {m: round(v / len(QUERIES), 3) for m, v in identical.items()},
        "max_score_diff": worst, "latency_mode": mode, "latency": p,
        "p99_ratio_segments_over_single": round(p["segments"]["p99_ms"] / p["single"]["p99_ms"], 2),
        "full_merge_s": round(merge_s, 2), "full_merge_over_full_build": round(merge_s / full_build_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N bundled patents (default: all)")
    parser.add_argument("--write", type=int, default=100)
    parser.add_argument("--steps", type=int, default=9, help="flushes: the snapshot then has steps + 1 segments")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dense-model", default="static-64", help="'none' for BM25 only")
    parser.add_argument("--part", choices=("all", "bm25_engines", "faiss_ids", "served"), default="all")
    args = parser.parse_args()
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    patents = load_patents(args.limit)
    out: dict[str, Any] = {"benchmark": "segments", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.part in ("all", "bm25_engines"):
        out["bm25_engines"] = bm25_engines(patents, args.work, args.write, args.repeat)
    if args.part in ("all", "faiss_ids"):
        out["faiss_ids"] = faiss_ids(384, 100_000, args.write)
    if args.part in ("all", "served"):
        dense = None if args.dense_model == "none" else args.dense_model
        out["served"] = served(patents, args.work, dense, args.steps, 17, args.repeat)
    out["machine"] = machine()
    text = json.dumps(out, ensure_ascii=False, indent=1)
    (args.work / "segments.json").write_text(text, "utf-8")
    print(text)


if __name__ == "__main__":
    main()
