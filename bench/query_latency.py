"""Query latency of bm25, dense and hybrid search on a built workspace (the bundled data after `make demo`).

Prints JSON: p50/p95/p99 and mean milliseconds per mode, end to end through ``Searcher.search_patents`` (query
analysis and query encoding included, result records read from SQLite), measured side by side in one run with
the modes interleaved per query so load on the machine affects them alike; plus the machine it ran on. "hybrid"
is the served configuration (the learned fusion: BM25 per document language with the query translated, dense,
features, the model); "hybrid_convex" is the previous default (one BM25 run, convex fusion, no translation), so
``hybrid_over_convex_p99`` is the cost of translation and the learned ranker, measured in the same run.

"hybrid_no_titles" is the served configuration over the same snapshot without its title vectors (no title
channel: the query is not encoded by the title model), so ``hybrid_over_no_titles_p99`` is what the title channel
costs, measured in the same run.

    python bench/query_latency.py --home .pmatch --repeat 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Before numpy/faiss/torch load: one BLAS thread per process is the serving setting (see the infrastructure notes).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine  # bench/machine.py, beside this script

from matcher.search import Searcher
from matcher.workspace import Workspace

QUERIES = [
    "锂离子电池 正极材料", "graphics processor thread scheduling", "石墨烯 散热膜", "针织围巾 防起球 工艺",
    "A method for preparing cathode material for lithium batteries", "污水处理 膜生物反应器",
    "video encoder motion estimation", "智能温室 环境监测 物联网", "autonomous vehicle lidar camera calibration",
    "中药提取 黄酮 工艺", "low power neural network inference accelerator", "土壤重金属 修复",
    "高强度 铝合金 热处理", "server data center cooling", "无人机 巡检 图像识别", "LED 驱动电源",
]


def summary(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms)
    return {"n": len(ms), "mean_ms": round(float(arr.mean()), 2), "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2), "p99_ms": round(float(np.percentile(arr, 99)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None, help="workspace (default $PMATCH_HOME or .pmatch)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    searcher = Searcher(Workspace(args.home))
    convex = Searcher(searcher.workspace, searcher.config.model_copy(update={"fusion": "convex"}))
    snap = searcher.snapshot("patents")
    runs = {"bm25": (searcher, "bm25"), "dense": (searcher, "dense"), "hybrid": (searcher, "hybrid"),
            "hybrid_convex": (convex, "hybrid")}
    if snap.titles is not None:
        runs["hybrid_no_titles"] = (searcher.over({"patents": dataclasses.replace(snap, titles=None)}), "hybrid")
    for s, mode in runs.values():  # warm up: load the index files, the model and the dictionary once
        s.search_patents(QUERIES[0], args.k, mode=mode)  # type: ignore[arg-type]
    times: dict[str, list[float]] = {m: [] for m in runs}
    for _ in range(args.repeat):
        for q in QUERIES:
            for name, (s, mode) in runs.items():
                t = time.perf_counter()
                s.search_patents(q, args.k, mode=mode)  # type: ignore[arg-type]
                times[name].append((time.perf_counter() - t) * 1000)
    out = {
        "benchmark": "query_latency",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "documents": len(snap.bm25.ids),
        "dense": snap.dense.manifest if snap.dense else None,
        "titles": snap.manifest.titles.model_dump() if snap.manifest.titles else None,
        "config": searcher.config.model_dump(),
        "k": args.k,
        "queries": len(QUERIES) * args.repeat,
        "latency": {m: summary(v) for m, v in times.items()},
        "hybrid_over_bm25_median": round(statistics.median(times["hybrid"]) / statistics.median(times["bm25"]), 2),
        "hybrid_over_convex_p99": round(float(np.percentile(times["hybrid"], 99))
                                        / float(np.percentile(times["hybrid_convex"], 99)), 2),
        "machine": machine(),
    }
    if "hybrid_no_titles" in times:
        out["hybrid_over_no_titles_p99"] = round(float(np.percentile(times["hybrid"], 99))
                                                 / float(np.percentile(times["hybrid_no_titles"], 99)), 2)
    if out["dense"]:
        out["dense"] = {k: out["dense"][k] for k in ("kind", "params", "metadata") if k in out["dense"]}
    print(json.dumps(out, ensure_ascii=False, indent=1))
    convex.close()
    searcher.close()


if __name__ == "__main__":
    main()
