"""The rows a person judges for issue 14's before/after check: the top row of 30 demands of each shipped chain's
shortlist, and the first 40 push rows for NVIDIA's portfolio (the best pair of each of the top 40 enterprises).

Only ``build_shortlist`` / ``build_push`` and the row keys every version has are used, so the same script runs on
an old checkout (``PYTHONPATH=OLD_TREE python eval/judged_rows.py --home H --out old.jsonl``). The 30 demands of a
chain are drawn with a fixed seed (``--seed``) from those its shortlist serves; a row carries both texts, so it can be
judged without the store.

``--judged pairs.jsonl --demands seen|unseen`` keeps only demands that are (seen) or are not (unseen) in a labeled
set: a tuning round reads seen demands, a fresh round reports on demands nobody has judged before (for push, the
first 40 enterprises whose demand is unseen).

    python eval/judged_rows.py --home .pmatch --out rows.jsonl
    python eval/judged_rows.py --home .pmatch --out fresh.jsonl --seed 2114 \
        --judged eval/datasets/shortlist_pairs/pairs.jsonl --demands unseen

``--pair-model`` draws the rows with the pair model on (shortlist and push), ``--loose-floors`` the shortlist without
its lexical floors (round 6 of ``shortlist_pairs``: ``--seed 2212 --per-chain 20``), ``--no-push`` shortlist rows only.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from matcher.chains import load_chain, shipped_chains
from matcher.push import PushOptions, build_push
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.shortlist import ShortlistOptions, build_shortlist
from matcher.workspace import Workspace

PER_CHAIN = 30
PUSH_ROWS = 40
SEED = 14
LOOSE_RELEVANCE = 0.1


def _texts(searcher: Searcher, demand_id: str, patent_id: str) -> dict[str, str]:
    d = searcher.store.get("demands", demand_id)
    p = searcher.store.get("patents", patent_id)
    assert isinstance(d, Demand) and isinstance(p, Patent)
    return {"demand": f"{d.title} | {d.description[:240]}", "patent": f"{p.title} | {p.abstract[:240]}"}


def _scores(r: dict) -> dict[str, object]:
    """What the version knew of the pair (keys a later version added are left out when absent)."""
    return {k: r[k] for k in ("score", "relevance", "title_coverage", "fit", "pair_confidence") if r.get(k) is not None}


def rows(searcher: Searcher, seed: int = SEED, keep: Callable[[str], bool] = lambda _: True,
         shortlist: ShortlistOptions | None = None, push: PushOptions | None = None,
         per_chain: int = PER_CHAIN, push_rows: bool = True) -> list[dict[str, object]]:
    """The rows to judge: with ``shortlist`` / ``push`` options other than the defaults when given (``explain`` and
    the push's ``k`` / ``per_enterprise`` are always this script's); no push rows without ``push_rows``."""
    out: list[dict[str, object]] = []
    for path in shipped_chains():
        chain = load_chain(path)
        sl = build_shortlist(searcher, chain, replace(shortlist or ShortlistOptions(), explain=False))
        top: dict[str, dict] = {}
        for r in sl.rows:
            if r["rank"] == 1 and r["demand_id"] not in top and keep(r["demand_id"]):
                top[r["demand_id"]] = r
        picked = sorted(top)
        random.Random(seed).shuffle(picked)
        for demand_id in sorted(picked[:per_chain]):
            r = top[demand_id]
            out.append({"set": "shortlist", "chain": path.stem, "segment": r["segment_id"], "demand_id": demand_id,
                        "patent_id": r["patent_id"], **_scores(r), **_texts(searcher, demand_id, r["patent_id"])})
    # every enterprise (k only cuts the ranked list: the cost is matching the portfolio), then the first kept
    if not push_rows:
        return out
    pushed = build_push(searcher, applicant="NVIDIA",
                        options=replace(push or PushOptions(), k=100_000, per_enterprise=1, explain=False))
    kept = [r for r in pushed.rows if keep(r["demand_id"])]
    for r in kept[:PUSH_ROWS]:
        out.append({"set": "push", "chain": "nvidia", "segment": "", "demand_id": r["demand_id"],
                    "patent_id": r["patent_id"], "enterprise_rank": r["enterprise_rank"], **_scores(r),
                    **_texts(searcher, r["demand_id"], r["patent_id"])})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--judged", type=Path, help="a labeled set (pairs.jsonl) that --demands refers to")
    ap.add_argument("--demands", choices=("all", "seen", "unseen"), default="all")
    ap.add_argument("--per-chain", type=int, default=PER_CHAIN, help="demands drawn per chain")
    ap.add_argument("--pair-model", action="store_true", help="shortlist and push with the pair model on")
    ap.add_argument("--loose-floors", action="store_true",
                    help="shortlist without the lexical floors (title and topic coverage) and with min_relevance "
                         f"{LOOSE_RELEVANCE}, leaving the pair model to decide")
    ap.add_argument("--no-push", action="store_true", help="shortlist rows only")
    args = ap.parse_args()
    shortlist = ShortlistOptions(pair_model=args.pair_model)
    if args.loose_floors:
        shortlist = replace(shortlist, min_coverage=None, min_topic_coverage=None, min_relevance=LOOSE_RELEVANCE)
    push = PushOptions(pair_model=args.pair_model)
    keep: Callable[[str], bool] = lambda _: True  # noqa: E731
    if args.demands != "all":
        if args.judged is None:
            ap.error("--demands seen|unseen needs --judged")
        seen = {json.loads(line)["demand_id"] for line in args.judged.read_text("utf-8").splitlines() if line.strip()}
        keep = (lambda d: d in seen) if args.demands == "seen" else (lambda d: d not in seen)
    searcher = Searcher(Workspace(args.home))
    try:
        with args.out.open("w", encoding="utf-8") as f:
            for row in rows(searcher, args.seed, keep, shortlist, push, args.per_chain, not args.no_push):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        searcher.close()


if __name__ == "__main__":
    main()
