"""The standing-match stage alone, on a scale workspace: up to 100 pending patents (those ``bench/standing_latency.py``
wrote but could not publish: at 100k a full patents rebuild took 1,494 s under load 20) matched against the demands
active on ``--as-of``, ungated and unconfirmed (the demand side cannot see unpublished patents; confirming adds one
demand -> patents search per candidate above the floor). Prints JSON; records nothing.

    python bench/standing_match_stage.py --work W
"""

from __future__ import annotations

import argparse
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
from matcher.search import Searcher
from matcher.standing import StandingSettings, _Round, match_record
from matcher.store import Store
from matcher.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2020, 3, 19))
    ap.add_argument("--explained", type=int, default=30, help="records matched again with explanations")
    args = ap.parse_args()
    os.environ["PMATCH_VECTOR_CACHE"] = str(args.work / "vectors.sqlite")
    ws = Workspace(home(args.work))
    started = time.perf_counter()
    searcher = Searcher(ws)
    searcher.snapshot("demands")
    searcher.snapshot("patents")
    opened = time.perf_counter() - started
    out: dict[str, object] = {}
    active = 0
    with Store(ws.store_path) as store:
        items = ev.pending(store, limit=100)
        for explain, chosen in ((False, items), (True, items[:args.explained])):
            settings = StandingSettings(as_of=args.as_of, confirm=False, explain=explain, cap_per_enterprise=None)
            rnd = _Round(searcher.pinned(["patents", "demands"]), store, settings)
            active = rnd.active_demands
            t = time.perf_counter()
            found = sum(len(match_record(rnd, item)[1]) for item in chosen)
            seconds = time.perf_counter() - t
            out[f"explain={explain}"] = {"records": len(chosen), "events_found": found, "seconds": round(seconds, 2),
                                         "ms_per_patent": round(1000 * seconds / max(len(chosen), 1), 1)}
    print(json.dumps({"machine": machine(), "workspace": {"patents": searcher.store.count("patents"),
                                                          "demands": searcher.store.count("demands")},
                      "active_demands": active, "open_searcher_s": round(opened, 2), **out}, indent=1))


if __name__ == "__main__":
    main()
