"""Pool candidates for judging demands: the top 10 of BM25, dense and hybrid over the bundled patents.

Run once against a workspace built by `pmatch demo` (PMATCH_HOME). Demands are sampled with a fixed seed from
the bundled Zhibei demands that have a description of at least 30 characters. The pool file is what judges
read; judgments live in judgments.jsonl beside it.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from matcher.records import Demand
from matcher.search import Searcher
from matcher.texts import demand_query
from matcher.workspace import Workspace

MODES = ("bm25", "dense", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("pool.jsonl"))
    args = parser.parse_args()
    searcher = Searcher(Workspace(args.home))
    demands = [d for d in searcher.store.iter_records("demands") if isinstance(d, Demand) and len(d.description) >= 30]
    chosen = random.Random(args.seed).sample(demands, args.n)
    with args.out.open("w", encoding="utf-8") as out:
        for demand in chosen:
            pooled: dict[str, dict] = {}
            for mode in MODES:
                for r in searcher.search_patents(demand_query(demand), k=10, mode=mode):  # type: ignore[arg-type]
                    entry = pooled.setdefault(r.id, {"id": r.id, "title": r.record.title,
                                                     "abstract": r.record.abstract[:400],
                                                     "language": r.record.language, "found_by": []})
                    entry["found_by"].append(f"{mode}@{r.rank}")
            candidates = sorted(pooled.values(), key=lambda c: c["id"])
            out.write(json.dumps({"demand_id": demand.id, "title": demand.title, "description": demand.description,
                                  "industry": demand.industry, "candidates": candidates}, ensure_ascii=False) + "\n")
    searcher.close()


if __name__ == "__main__":
    main()
