"""Incremental segments at scale: how soon a write over HTTP is searchable on the 1M-patent scale workspace.

    python bench/scale.py --n 1000000 --demands 10000 --work W --stage ingest,build   # the workspace (synthetic)
    python bench/segments_scale.py --work W

Three parts, on the workspace ``bench/scale.py`` built (its snapshot is one segment of N synthetic patents):

* ``http``: ``pmatch serve`` on the workspace (the served ranker, use-m3, indexes read in). Writes of ``--small``
  and then ``--large`` real Zhibei offers from the bundled sample (new ids, so use-m3 embeds them for real: vectors
  are computed for the new records only), each ``POST /v1/ingest/patents?wait=true``; the client's time from
  sending the write to the answer that says it is published, the server's split (diff, embed, segment_write,
  publish), and a check that a search for each new record's title finds it. Then a delete of one record
  (``DELETE /v1/patents/{id}?wait=true``) and a search that no longer finds it. The standing-match worker is off
  (``PMATCH_STANDING_BACKGROUND=0``) so the figures are the index path alone; ``bench/standing_latency.py`` times
  match events.
* ``latency``: flushes of 10–100 offers (``update_snapshot``, in-process) until the snapshot has ``--segments``
  segments; a copy of the workspace is merged into one segment (``merge_segments(force=True)``); hybrid search over
  the real queries of ``bench/scale.py``, the two snapshots interleaved per query in one process.
* ``merge_vs_build``: on that copy, the full merge's wall time against a full build (``build_snapshot``) of the same
  store, one after the other in one run.

Prints JSON with the machine and the load (``bench/machine.py``); the floors of issue 17 are checked at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine  # noqa: E402
from bench.scale import home, queries  # noqa: E402
from bench.standing_latency import new_patents  # noqa: E402

FLOORS = {"small_searchable_s": 5.0, "large_searchable_s": 20.0, "delete_invisible_s": 1.0, "p99_ratio": 1.2,
          "merge_over_build": 1.0}


def pct(values: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(values)
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "max_ms": round(float(a.max()), 2)}


def found(client: httpx.Client, url: str, patent_id: str, title: str) -> bool:
    r = client.get(f"{url}/v1/search/patents", params={"q": title[:200], "limit": 10, "mode": "bm25"})
    r.raise_for_status()
    return patent_id in [x["id"] for x in r.json()["results"]]


def http_part(work: Path, small: int, large: int) -> dict[str, Any]:
    from api.http.keys import keys_create
    from bench.api_load import own_server

    key = keys_create(home(work), f"bench-{int(time.time())}")
    records = new_patents(small + large + 1, time.strftime("%H%M%S"))
    batches = {"small": records[:small], "large": records[small:small + large]}
    out: dict[str, Any] = {}
    os.environ["PMATCH_STANDING_BACKGROUND"] = "0"
    t0 = time.perf_counter()
    with own_server(home(work), None) as url, httpx.Client(timeout=600, headers={"X-API-Key": key}) as client:
        out["server_ready_s"] = round(time.perf_counter() - t0, 1)
        for name, batch in batches.items():
            body = {"records": [p.model_dump(mode="json", exclude_none=True) for p in batch]}
            t = time.perf_counter()
            r = client.post(f"{url}/v1/ingest/patents", params={"wait": "true"}, json=body)
            answered = time.perf_counter() - t
            r.raise_for_status()
            info = r.json()
            visible = sum(found(client, url, p.id, p.title) for p in batch)
            out[name] = {"records": len(batch), "inserted": info["report"]["inserted"],
                         "state": info["reindex"]["state"], "write_to_searchable_s": round(answered, 2),
                         "server_seconds": (info["reindex"].get("seconds") or {}).get("patents"),
                         "found_by_title_search": visible, "load_after": os.getloadavg()[0]}
        gone = batches["small"][0]
        t = time.perf_counter()
        r = client.delete(f"{url}/v1/patents/{gone.id}", params={"wait": "true"})
        answered = time.perf_counter() - t
        r.raise_for_status()
        info = r.json()
        out["delete"] = {"write_to_invisible_s": round(answered, 3), "state": info["reindex"]["state"],
                         "server_seconds": (info["reindex"].get("seconds") or {}).get("patents"),
                         "still_found": found(client, url, gone.id, gone.title)}
        status = client.get(f"{url}/v1/index/status").json()
        out["index_status"] = status
    return out


def latency_part(work: Path, segments: int, n_queries: int, repeat: int) -> dict[str, Any]:
    from matcher.flush import update_snapshot
    from matcher.full_build import build_snapshot
    from matcher.merge import merge_segments
    from matcher.search import Searcher
    from matcher.store import Store
    from matcher.workspace import Workspace

    ws = Workspace(home(work))
    manifest = ws.current_manifest("patents")
    assert manifest is not None, "no patents snapshot: run bench/scale.py --stage ingest,build first"
    extra = new_patents(2810, "L" + time.strftime("%H%M%S"))
    flushes, taken, step = [], 0, 0
    while len(manifest.segments) < segments and taken < len(extra):
        n_new = 10 + (step * 37) % 91  # 10..100, deterministic
        with Store(ws.store_path) as store:
            store.write_batch("patents", extra[taken:taken + n_new], f"bench segments {step}")
        taken += n_new
        result = update_snapshot(ws, "patents", dense_model="use-m3")
        flushes.append(result.to_dict() if hasattr(result, "to_dict") else {"seconds": result.seconds})
        manifest = ws.current_manifest("patents")
        assert manifest is not None
        step += 1
    sizes = [s.live_count for s in manifest.segments]
    merged = Workspace(work / "merged_home")
    if merged.home.exists():
        shutil.rmtree(merged.home)
    t = time.perf_counter()
    shutil.copytree(ws.home, merged.home)
    copy_s = time.perf_counter() - t
    t = time.perf_counter()
    merge_segments(merged, "patents", dense_model="use-m3", force=True)
    merge_s = time.perf_counter() - t
    merged_manifest = merged.current_manifest("patents")
    assert merged_manifest is not None
    qs = queries(n_queries, 0)
    seg, one = Searcher(ws, mmap=False), Searcher(merged, mmap=False)
    for s in (seg, one):
        for q in qs[:5]:
            s.search_patents(q, 10, mode="hybrid")
    lat: dict[str, list[float]] = {"segments": [], "single": []}
    identical = 0
    for _ in range(repeat):
        for q in qs:
            ids = {}
            for name, s in (("segments", seg), ("single", one)):
                t = time.perf_counter()
                ids[name] = [r.id for r in s.search_patents(q, 10, mode="hybrid")]
                lat[name].append((time.perf_counter() - t) * 1000)
            identical += ids["segments"] == ids["single"]
    seg.close()
    one.close()
    p = {k: pct(v) for k, v in lat.items()}
    t = time.perf_counter()
    build_snapshot(merged, "patents", dense_model="use-m3")
    build_s = time.perf_counter() - t
    shutil.rmtree(merged.home)
    return {
        "segments": len(sizes), "segment_live_sizes": sizes, "flushes": flushes,
        "latency": {"mode": "hybrid", "queries": len(qs), "repeat": repeat, **p,
                    "p99_ratio_segments_over_single": round(p["segments"]["p99_ms"] / p["single"]["p99_ms"], 3),
                    "top10_identical_share": round(identical / (len(qs) * repeat), 3)},
        "merge_vs_build": {"copy_s": round(copy_s, 1), "full_merge_s": round(merge_s, 1),
                           "merged_segments": len(merged_manifest.segments), "full_build_s": round(build_s, 1),
                           "merge_over_build": round(merge_s / build_s, 3)},
    }


def verdict(out: dict[str, Any]) -> dict[str, Any]:
    h, lat = out.get("http", {}), out.get("latency", {})
    got = {
        "small_searchable_s": h.get("small", {}).get("write_to_searchable_s"),
        "large_searchable_s": h.get("large", {}).get("write_to_searchable_s"),
        "delete_invisible_s": h.get("delete", {}).get("write_to_invisible_s"),
        "p99_ratio": lat.get("latency", {}).get("p99_ratio_segments_over_single"),
        "merge_over_build": lat.get("merge_vs_build", {}).get("merge_over_build"),
    }
    return {k: {"floor": FLOORS[k], "measured": v, "met": None if v is None else v <= FLOORS[k]}
            for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="bench/scale.py's work folder (ingest and build done)")
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=1000)
    ap.add_argument("--segments", type=int, default=10, help="segments in the snapshot for the latency part")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--part", choices=("all", "http", "latency"), default="all")
    args = ap.parse_args()
    os.environ["PMATCH_VECTOR_CACHE"] = str(args.work / "vectors.sqlite")
    out: dict[str, Any] = {"benchmark": "segments_scale", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                   time.gmtime())}
    out["machine_start"] = machine()
    if args.part in ("all", "http"):
        out["http"] = http_part(args.work, args.small, args.large)
    if args.part in ("all", "latency"):
        out["latency"] = latency_part(args.work, args.segments, args.queries, args.repeat)
    out["load_end"] = os.getloadavg()
    out["floors"] = verdict(out)
    text = json.dumps(out, ensure_ascii=False, indent=1)
    (args.work / "results").mkdir(exist_ok=True)
    (args.work / "results" / "segments_scale.json").write_text(text, "utf-8")
    print(text)


if __name__ == "__main__":
    main()
