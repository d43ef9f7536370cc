"""Which judged push pairs the reciprocal check keeps: for each push pair of a labeled set (``pairs.jsonl``), the
rank of the patent in the demand's own search of the whole patent corpus (``matching.reciprocal_ranks``), and the
good / loose / bad pairs kept at each k (a pair is kept at k when that rank is at most k).

    python eval/reciprocal_pairs.py --home .pmatch eval/datasets/shortlist_pairs/pairs.jsonl --k 3 5 10
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from matcher.matching import reciprocal_ranks
from matcher.records import Demand
from matcher.search import Searcher
from matcher.workspace import Workspace

DEPTH = 200  # ranks beyond this are reported as "> DEPTH"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--k", type=int, nargs="+", default=[3, 5, 10])
    args = ap.parse_args()
    pairs = [json.loads(line) for line in args.pairs.read_text("utf-8").splitlines() if line.strip()]
    push = [p for p in pairs if any(v.get("set") == "push" for v in p["proposed_by"])]
    searcher = Searcher(Workspace(args.home))
    try:
        demands = {}
        for p in push:
            d = searcher.store.get("demands", p["demand_id"])
            assert isinstance(d, Demand)
            demands[d.id] = d
        ranks = reciprocal_ranks(searcher, demands, DEPTH)
    finally:
        searcher.close()
    rows = [{"demand_id": p["demand_id"], "patent_id": p["patent_id"], "label": p["label"],
             "reciprocal_rank": ranks[p["demand_id"]].get(p["patent_id"])} for p in push]
    table = {"off": dict(Counter(r["label"] for r in rows))}
    for k in args.k:
        table[str(k)] = dict(Counter(r["label"] for r in rows if r["reciprocal_rank"] and r["reciprocal_rank"] <= k))
    print(json.dumps({"push_pairs": len(rows), "kept": table,
                      "pairs": sorted(rows, key=lambda r: (r["reciprocal_rank"] or DEPTH + 1, r["demand_id"]))},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
