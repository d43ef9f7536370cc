"""Time from a write of new patents to their match events, on a scale workspace built by ``bench/scale.py``.

    python bench/scale.py --n 100000 --demands 10000 --work W --stage ingest,build   # the workspace (synthetic)
    python bench/standing_latency.py --work W --patents 100 --as-of 2020-03-19

The bulk load's own standing work (every synthetic record is pending after ``ingest``) is cleared first: what is
timed is one write of ``--patents`` real Zhibei offers (new ids, embedded for real by use-m3) through
``Store.write_batch`` (the pending work lands in the same transaction), the flush that makes them searchable
(``update_snapshot``: a new segment with the new records' vectors, as a server's write does), and
``matcher.standing.run_pending``: each new patent searched against the demands active on ``--as-of``, events above
the floor recorded. Prints JSON with the machine and the load.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine
from bench.scale import home
from matcher import match_events as ev
from matcher.flush import update_snapshot
from matcher.records import Patent
from matcher.search import Searcher
from matcher.standing import StandingSettings, run_pending
from matcher.store import Store
from matcher.workspace import Workspace

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "patents.jsonl.gz"


def new_patents(n: int, tag: str) -> list[Patent]:
    out = []
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if str(row.get("source", "")).startswith("zhibei"):
                row["id"] = f"NEW{tag}-{row['id']}"
                row["title"] = f"{row.get('title', '')}（{tag}）"  # not an exact duplicate of a stored record
                out.append(Patent.model_validate(row))
            if len(out) == n:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--patents", type=int, default=100)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2020, 3, 19))
    ap.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    os.environ["PMATCH_VECTOR_CACHE"] = str(args.work / "vectors.sqlite")
    ws = Workspace(home(args.work))
    with Store(ws.store_path) as store:
        bulk = ev.pending_count(store)
        with store.transaction() as db:
            db.execute("DELETE FROM pending_work")
        counts = {"patents": store.count("patents"), "demands": store.count("demands")}
        day = args.as_of.isoformat()
        active = store._db.execute("SELECT COUNT(*) FROM demands WHERE (posted_date IS NULL OR posted_date <= ?) "
                                   "AND (expiry_date IS NULL OR expiry_date >= ?)", (day, day)).fetchone()[0]
    records = new_patents(args.patents, time.strftime("%H%M%S"))
    start = time.perf_counter()
    with Store(ws.store_path) as store:
        report = store.write_batch("patents", records, "bench: new offers")
    written = time.perf_counter()
    flush = update_snapshot(ws, "patents", dense_model="use-m3")
    published = time.perf_counter()
    searcher = Searcher(ws)
    opened = time.perf_counter()
    run = run_pending(searcher, StandingSettings(as_of=args.as_of, explain=args.explain))
    done = time.perf_counter()
    searcher.close()
    print(json.dumps({
        "machine": machine(), "workspace": counts, "demands_active": active, "as_of": day,
        "bulk_pending_cleared": bulk, "written": report.inserted, "explain": args.explain,
        "seconds": {"write": round(written - start, 3), "publish_flush": round(published - written, 2),
                    "open_searcher": round(opened - published, 2), "match": round(done - opened, 2),
                    "write_to_events": round(done - start, 2)},
        "match_ms_per_patent": round(1000 * (done - opened) / max(run.processed, 1), 1),
        "flush": flush.to_dict(),
        "run": run.to_dict(),
    }, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
