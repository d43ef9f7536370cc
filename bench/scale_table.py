"""Markdown tables from ``bench/scale.py`` runs: the figures side by side, and how cost grows per record.

    python bench/scale_table.py /tmp/pm-scale-100k /tmp/pm-scale-1m > table.md

Each argument is a scale run's ``--work`` folder (its ``results/*.json``). The first table lists every figure per
run; the second divides the size-dependent ones by the number of stored documents, so growth from 100k to 1M
reads as "per record". A missing figure (a stage not run) prints as a dash.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DASH = "–"
Path_ = tuple[str | int, ...]

FIGURES: list[tuple[str, Path_]] = [
    ("documents stored (after exact-duplicate drop)", ("ingest", "patents", "inserted")),
    ("ingest: validate + Store.write_batch, records/s", ("ingest", "patents", "ingest_records_per_s")),
    ("store size, MiB", ("ingest", "store_mib")),
    ("BM25 build (BM25Index.build), wall s", ("bm25", "build", "wall_s")),
    ("BM25 build, CPU s", ("bm25", "build", "cpu_s")),
    ("BM25 build peak RSS, MiB", ("bm25", "build", "peak_rss_mib")),
    ("BM25 index on disk, MiB", ("bm25", "disk_mib")),
    ("BM25 query p50 / p99 ms", ("bm25", "query", "single")),
    ("BM25 batch queries/s, 2 threads", ("bm25", "query", "batch_2_threads_qps")),
    ("rank-bm25 query mean ms (same tokens, same run)", ("rank_bm25", "rank_bm25_query", "mean_ms")),
    ("ours, same loop, mean ms", ("rank_bm25", "ours_query", "mean_ms")),
    ("speed ratio, mean", ("rank_bm25", "speed_ratio_mean")),
    ("speed ratio, p50", ("rank_bm25", "speed_ratio_p50")),
    ("top-10 identical, fraction of queries", ("rank_bm25", "top10_identical_fraction")),
]
for _kind in ("flat", "ivf_sq8", "hnsw"):
    FIGURES += [
        (f"dense {_kind}: build s (calibration included)", (f"dense-{_kind}", "build", "wall_s")),
        (f"dense {_kind}: build peak RSS, MiB", (f"dense-{_kind}", "build", "peak_rss_mib")),
        (f"dense {_kind}: on disk, MiB", (f"dense-{_kind}", "disk_mib")),
        (f"dense {_kind}: calibrated setting", (f"dense-{_kind}", "build", "calibration", "chosen")),
        (f"dense {_kind}: recall@10, held-out real demand vectors", (f"dense-{_kind}", "recall_at_10")),
        (f"dense {_kind}: query p50 / p99 ms (default threads)", (f"dense-{_kind}", "single")),
        (f"dense {_kind}: query p50 / p99 ms (1 thread)", (f"dense-{_kind}", "single_1thread")),
    ]
FIGURES += [
    ("build_snapshot patents (BM25 + facets + dense, vectors given), wall s", ("build", "patents", "wall_s")),
    ("build_snapshot peak RSS, MiB", ("build", "peak_rss_mib")),
    ("served dense kind", ("build", "patents", "dense_kind")),
]
for _variant in ("served", "default"):
    FIGURES += [
        (f"hybrid p50 / p99 ms ({_variant})", (f"hybrid-{_variant}", "latency", "hybrid")),
        (f"bm25 mode p50 / p99 ms ({_variant})", (f"hybrid-{_variant}", "latency", "bm25")),
        (f"dense mode p50 / p99 ms ({_variant})", (f"hybrid-{_variant}", "latency", "dense")),
        (f"query encoding p50 / p99 ms ({_variant})", (f"hybrid-{_variant}", "query_encoding")),
        (f"service RSS / peak, MiB ({_variant})", (f"hybrid-{_variant}", "service_memory_mib")),
    ]
_RUN: Path_ = ("shortlist", "runs", 0)
FIGURES += [
    ("shortlist, all pairs: demands", (*_RUN, "all_pairs", "demands")),
    ("shortlist, all pairs: scoring ms a demand", (*_RUN, "all_pairs", "score_ms_per_demand")),
    ("shortlist, all pairs: exact assignment s", (*_RUN, "all_pairs", "timings", "assign_s")),
    ("shortlist, all pairs: total s", (*_RUN, "all_pairs", "timings", "total_s")),
    ("shortlist, explained rows: ms a row", (*_RUN, "explain_sample", "explain_ms_per_row")),
    ("portfolio push: patents", (*_RUN, "push", "patents")),
    ("portfolio push: total s (explained)", (*_RUN, "push", "timings", "total_s")),
    ("shortlist process peak RSS, MiB", ("shortlist", "peak_rss_mib")),
]

# (label, path, unit, scale): figure / documents * scale
PER_RECORD: list[tuple[str, Path_, str, float]] = [
    ("ingest", ("ingest", "patents", "write_batch_s"), "µs", 1e6),
    ("store size", ("ingest", "store_mib"), "KiB", 1024),
    ("BM25 build, CPU", ("bm25", "build", "cpu_s"), "µs", 1e6),
    ("BM25 index on disk", ("bm25", "disk_mib"), "KiB", 1024),
    ("BM25 build peak RSS", ("bm25", "build", "peak_rss_mib"), "KiB", 1024),
    ("IVF-SQ8 build", ("dense-ivf_sq8", "build", "wall_s"), "µs", 1e6),
    ("IVF-SQ8 on disk (index + float16 vectors)", ("dense-ivf_sq8", "disk_mib"), "KiB", 1024),
    ("HNSW build", ("dense-hnsw", "build", "wall_s"), "µs", 1e6),
    ("build_snapshot patents, wall", ("build", "patents", "wall_s"), "µs", 1e6),
    ("build_snapshot peak RSS", ("build", "peak_rss_mib"), "KiB", 1024),
    ("loaded service RSS (served)", ("hybrid-served", "service_memory_mib", "VmRSS"), "KiB", 1024),
]


def load_results(work: Path) -> dict[str, Any]:
    folder = work / "results"
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no results (run bench/scale.py --work {work} first)")
    return {f.stem: json.loads(f.read_text("utf-8")) for f in sorted(folder.glob("*.json"))}


def get(results: dict[str, Any], path: Path_) -> Any:
    value: Any = results
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or not -len(value) <= key < len(value):
                return None
        elif not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def fmt(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, dict):
        if "p50_ms" in value:
            return f"{value['p50_ms']:.1f} / {value['p99_ms']:.1f}"
        if "VmRSS" in value:
            return f"{value['VmRSS']:,.0f} / {value.get('VmHWM', 0):,.0f}"
        return DASH
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def documents(results: dict[str, Any]) -> int | None:
    return get(results, ("ingest", "patents", "inserted")) or get(results, ("build", "patents", "documents"))


def label(results: dict[str, Any], work: Path) -> str:
    n = documents(results)
    return f"{n:,}" if n else work.name


def tables(works: list[Path]) -> str:
    runs = [load_results(w) for w in works]
    heads = [label(r, w) for r, w in zip(runs, works, strict=True)]
    lines = ["| figure | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(runs)]
    for name, path in FIGURES:
        cells = [fmt(get(r, path)) for r in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| per stored document | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(runs)]
    for name, path, unit, scale in PER_RECORD:
        cells = []
        for r in runs:
            value, n = get(r, path), documents(r)
            cells.append(f"{value / n * scale:,.1f} {unit}" if isinstance(value, int | float) and n else DASH)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("works", nargs="+", type=Path, help="bench/scale.py --work folders")
    print(tables(parser.parse_args(argv).works), end="")


if __name__ == "__main__":
    main()
