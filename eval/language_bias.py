"""Language bias of a ranker on the cross-lingual set: how much of its top 10 is in the query's own language.

Every cross-lingual query's relevant document is in the *other* language, and the mixed corpus has both, so a
ranker that fills its top 10 with same-language documents is showing language bias, not relevance. Prints JSON
per configuration: the mean share of same-language documents in the top 10, and Recall@10/@100.

    python -m eval.language_bias --data eval/datasets/crosslingual --split test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.beir import detect_language, load_dataset
from eval.metrics import score
from eval.runner import EvalConfig, Workspaces, run_dataset

CONFIGS = {
    "dense e5-small, one global pool": EvalConfig(mode="dense", model="e5-small", per_language=False),
    "dense use-m3, one global pool": EvalConfig(mode="dense", model="use-m3", per_language=False),
    "dense e5-small, per-language pools": EvalConfig(mode="dense", model="e5-small", per_language=True),
    "dense use-m3, per-language pools": EvalConfig(mode="dense", model="use-m3", per_language=True),
    "hybrid (served default)": EvalConfig(),
    "hybrid e5-small": EvalConfig(mode="hybrid", model="e5-small"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("eval/datasets/crosslingual"))
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    dataset = load_dataset(args.data, args.split)
    language = {d["_id"]: d.get("language") or detect_language(d["title"] + d["text"]) for d in dataset.corpus}
    workspaces = Workspaces()
    out = {}
    for name, config in CONFIGS.items():
        run, qrels, _ = run_dataset(dataset, config, workspaces)
        shares = []
        for qid, ranked in run.items():
            qlang = dataset.queries[qid].get("lang") or detect_language(dataset.queries[qid]["text"])
            top = list(ranked)[:10]
            if top:
                shares.append(sum(language.get(d) == qlang for d in top) / len(top))
        metrics, _ = score(qrels, run, ["recall@10", "recall@100", "ndcg@10"])
        out[name] = {"same_language_share_top10": round(sum(shares) / max(len(shares), 1), 3),
                     **{k: round(v, 4) for k, v in metrics.items()}}
    workspaces.close()
    print(json.dumps({"dataset": str(args.data), "split": args.split, "queries": len(dataset.qrels), "results": out},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
