"""Time of chain shortlists and of a portfolio push on a built workspace (the bundled data after `make demo`).

Prints JSON with, per workspace:

* ``all_pairs``: a shortlist over **every** demand x **every** patent (one segment holding everything the default
  filters allow): hybrid scoring of each demand, the exact assignment (and the greedy baseline on the same
  edges, for comparison), without explanations;
* ``explain_sample``: the cost of explanations, measured on a sample of demands (per row);
* ``chains``: each shipped chain end to end (selection, scoring, assignment, explanations);
* ``push``: a push for the first ``--push-patents`` patents of ``--applicant`` (per-patent time is what scales);
* the machine it ran on.

``--scale PATH`` repeats everything on a bigger workspace (the corpus-scaling issue builds one); without it the
``scale`` entry says it was not given.

    python bench/shortlist.py --home /tmp/demo2-copy [--scale /path/to/bigger] [--push-patents 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine  # bench/machine.py, beside this script

from matcher.chain_segments import SegmentPick, Selection
from matcher.chains import load_chain, parse_chain, shipped_chains
from matcher.filters import DemandFilters, PatentFilters
from matcher.matching import portfolio_ids
from matcher.push import PushOptions, build_push
from matcher.search import Searcher
from matcher.shortlist import ShortlistOptions, build_shortlist
from matcher.workspace import Workspace


def everything(searcher: Searcher, limit: int | None) -> Selection:
    """One segment with every patent and every demand the default filters allow (the first ``limit`` demands)."""
    chain = parse_chain({"name": "all", "segments": [{"id": "all", "name": "全部", "ipc": ["A"]}]}, "bench")
    psnap, dsnap = searcher.snapshot("patents"), searcher.snapshot("demands")
    patents = np.flatnonzero(psnap.facets.patent_mask(PatentFilters()))
    demands = np.flatnonzero(dsnap.facets.demand_mask(DemandFilters()))[:limit]
    pick = SegmentPick(chain.segments[0], {int(p): ["all"] for p in patents}, {int(d): ["all"] for d in demands})
    return Selection(chain, [pick])


def run(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    searcher = Searcher(Workspace(home))
    out: dict[str, Any] = {"workspace": str(home), "patents": len(searcher.snapshot("patents").bm25.ids),
                           "demands": len(searcher.snapshot("demands").bm25.ids)}
    searcher.search_patents("warm up 预热", 5)  # load the index files and the model once
    options = ShortlistOptions(per_demand=args.per_demand, per_patent=args.per_patent, explain=False)

    selection = everything(searcher, args.demands)
    sl = build_shortlist(searcher, selection.chain, options, selection=selection)
    n = len(selection.demand_positions)
    out["all_pairs"] = {
        "demands": n, "patents": len(selection.patent_positions), "candidate_pairs": sl.summary["candidate_pairs"],
        "rows": sl.summary["rows"], "total_score": sl.summary["total_score"],
        "greedy_total_score": sl.summary["greedy_total_score"], "timings": sl.summary["timings"],
        "score_ms_per_demand": round(1000 * sl.summary["timings"]["score_s"] / max(n, 1), 1),
    }

    sample = everything(searcher, args.explain_sample)
    t = time.perf_counter()
    explained = build_shortlist(searcher, sample.chain, ShortlistOptions(**{**vars(options), "explain": True}),
                                selection=sample)
    rows = max(len(explained.rows), 1)
    out["explain_sample"] = {"demands": len(sample.demand_positions), "rows": len(explained.rows),
                             "explain_s": explained.summary["timings"]["explain_s"],
                             "explain_ms_per_row": round(1000 * explained.summary["timings"]["explain_s"] / rows, 1),
                             "wall_s": round(time.perf_counter() - t, 2)}

    out["chains"] = []
    for path in [] if args.no_chains else shipped_chains():
        chain = load_chain(path)
        result = build_shortlist(searcher, chain, ShortlistOptions(per_demand=args.per_demand,
                                                                   per_patent=args.per_patent))
        s = result.summary
        out["chains"].append({"chain": path.name, "patents_selected": s["patents_selected"],
                              "demands_selected": s["demands_selected"], "candidate_pairs": s["candidate_pairs"],
                              "rows": s["rows"], "timings": s["timings"]})

    ids = portfolio_ids(searcher, applicant=args.applicant)[: args.push_patents]
    push = build_push(searcher, ids=ids, options=PushOptions(k=20, per_enterprise=5))
    out["push"] = {"applicant": args.applicant, "patents": len(ids), "enterprises": len(push.enterprises),
                   "rows": len(push.rows), "timings": push.summary["timings"],
                   "match_ms_per_patent": round(1000 * push.summary["timings"]["match_s"] / max(len(ids), 1), 1)}
    searcher.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None, help="workspace (default $PMATCH_HOME or .pmatch)")
    parser.add_argument("--scale", type=Path, default=None, help="a bigger workspace to repeat the runs on")
    parser.add_argument("--per-demand", type=int, default=5)
    parser.add_argument("--per-patent", type=int, default=3)
    parser.add_argument("--demands", type=int, default=None, help="only the first N demands in all_pairs")
    parser.add_argument("--explain-sample", type=int, default=40, help="demands whose rows are explained")
    parser.add_argument("--no-chains", action="store_true", help="skip the shipped chains (a quick run)")
    parser.add_argument("--applicant", default="NVIDIA")
    parser.add_argument("--push-patents", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "shortlist", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "command": "python " + " ".join(sys.argv)}
    result["runs"] = [run(Workspace(args.home).home, args)]
    if args.scale is not None:
        result["runs"].append(run(args.scale, args))
        result["scale"] = str(args.scale)
    else:
        result["scale"] = "not given: pass --scale PATH (a bigger workspace) to repeat the runs on it"
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine()
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
