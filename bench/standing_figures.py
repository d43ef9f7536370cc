"""Standing-match figures on the bundled data: the 2,810 Zhibei offers ingested afresh against the 1,725 demands.

A fresh workspace: the demands are written, indexed and their standing work run first (no patents yet: nothing
to match), then the offers are written, indexed, and their standing matches run. Prints JSON: events, events per
enterprise (a bundled demand names no enterprise, so each demand is its own, ``(demand ID)``), the score
distribution, timings, and a seeded sample of events (``--sample N``) for reading.

    PYTHONPATH=. python bench/standing_figures.py --home /tmp/standing-fig --fusion learned --sample 40
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine
from matcher.full_build import build_snapshot
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.standing import StandingSettings, run_pending
from matcher.store import Store
from matcher.workspace import Workspace

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def read(kind: str) -> list[dict]:
    with gzip.open(SAMPLE / f"{kind}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--fusion", default=None, help="ranker fusion for the workspace (learned gives relevance)")
    ap.add_argument("--sample", type=int, default=40)
    ap.add_argument("--cap", type=int, default=None, help="cap per enterprise per week (default: none)")
    ap.add_argument("--explain", action=argparse.BooleanOptionalAction, default=False,
                    help="record explanations (the same events, slower)")
    args = ap.parse_args()
    ws = Workspace(args.home)
    ws.home.mkdir(parents=True, exist_ok=True)
    if args.fusion:
        (ws.home / "ranker.json").write_text(json.dumps({"fusion": args.fusion}), "utf-8")
    demands = [Demand.model_validate(r) for r in read("demands")]
    offers = [Patent.model_validate(r) for r in read("patents") if str(r.get("source", "")).startswith("zhibei")]
    as_of = max(d.posted_date for d in demands if d.posted_date)
    settings = StandingSettings(as_of=as_of, cap_per_enterprise=args.cap, explain=args.explain)
    timings = {}
    with Store(ws.store_path) as store:
        t = time.perf_counter()
        store.write_batch("demands", demands, "demands.jsonl.gz")
    build_snapshot(ws, "demands", dense_model="use-m3")
    searcher = Searcher(ws)
    run_pending(searcher, settings)  # no patents yet: the demands' work finds nothing
    timings["demands_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    with Store(ws.store_path) as store:
        report = store.write_batch("patents", offers, "zhibei offers")
    build_snapshot(ws, "patents", dense_model="use-m3")
    t_match = time.perf_counter()
    run = run_pending(searcher, settings)
    timings["offers_index_s"] = round(t_match - t, 1)
    timings["offers_match_s"] = round(time.perf_counter() - t_match, 1)
    db = searcher.store._db
    active = sum(1 for d in demands if (d.posted_date is None or d.posted_date <= as_of)
                 and (d.expiry_date is None or d.expiry_date >= as_of))
    rows = db.execute("SELECT id, patent, demand, enterprise, score, evidence, capped FROM match_events "
                      "WHERE superseded_by IS NULL ORDER BY id").fetchall()
    per_ent: dict[str, int] = {}
    per_patent: dict[str, int] = {}
    for _, p, _, e, _, _, _ in rows:
        per_ent[e] = per_ent.get(e, 0) + 1
        per_patent[p] = per_patent.get(p, 0) + 1
    counts = sorted(per_ent.values())

    def quantiles(values: list[int]) -> dict[str, float]:
        if not values:
            return {}
        q = statistics.quantiles(values, n=10) if len(values) > 1 else [values[0]] * 9
        return {"min": values[0], "p10": q[0], "median": statistics.median(values), "p90": q[8], "max": values[-1],
                "mean": round(statistics.mean(values), 2)}

    scores = sorted(r[4] for r in rows)
    rng = random.Random(19)
    sample = rng.sample(rows, min(args.sample, len(rows)))
    pats = searcher.store.get_many("patents", [r[1] for r in sample])
    dems = searcher.store.get_many("demands", [r[2] for r in sample])
    out = {
        "machine": machine(), "as_of": as_of.isoformat(), "fusion": searcher.config.fusion,
        "dense_model": searcher.config.dense_model, "offers_written": report.inserted,
        "offer_duplicates": len(report.duplicates), "demands": len(demands), "demands_active": active,
        "settings": settings.model_dump(mode="json"), "run": run.to_dict(), "timings": timings,
        "events": len(rows), "evidence": sorted({r[5] for r in rows}),
        "capped": sum(r[6] for r in rows),
        "enterprises_with_events": len(per_ent), "per_enterprise": quantiles(counts),
        "per_enterprise_histogram": {str(k): counts.count(k) for k in sorted(set(counts))},
        "patents_with_events": len(per_patent), "per_patent": quantiles(sorted(per_patent.values())),
        "score": {"min": scores[0], "median": statistics.median(scores), "max": scores[-1]} if scores else {},
        "sample": [{"event": r[0], "score": r[4], "patent": r[1], "patent_title": pats[r[1]].title,
                    "patent_abstract": getattr(pats[r[1]], "abstract", "")[:160], "demand": r[2],
                    "demand_title": dems[r[2]].title, "demand_text": getattr(dems[r[2]], "description", "")[:160]}
                   for r in sample],
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
