"""BM25+ parameters on the dev splits: nDCG@10 of BM25 alone for each (title repeat, k1, b) of a grid.

The served BM25 uses rank-bm25's defaults (k1 = 1.5, b = 0.75, delta = 1) and indexes the title once. This asks
whether another setting would serve every labelled set better, before anything is refitted on it. Each corpus is
tokenized once with the served analyzer; each setting is a fresh index of the same tokens. Dev splits only (test
splits are for reporting). Prints one JSON line per set: every setting's nDCG@10, the default's and the best.

    python -m eval.bm25_params --data eval/datasets/known_item_zh --data eval/datasets/demands \
        --k1 0.5,0.9,1.5 --b 0.3,0.75 --title 1,2
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from eval.beir import load_dataset
from eval.metrics import score
from indexes.analyzer import get_analyzer
from indexes.bm25 import DEFAULT_PARAMS, BM25Index, top_k

DEPTH = 100


def sweep(data: Path, split: str, k1s: list[float], bs: list[float], titles: list[int]) -> dict[str, object]:
    dataset = load_dataset(data, split)
    analyzer = get_analyzer()
    ids = [d["_id"] for d in dataset.corpus]
    title_tokens = analyzer.tokenize_many(d["title"] for d in dataset.corpus)
    body_tokens = analyzer.tokenize_many(d["text"] for d in dataset.corpus)
    queries = {qid: analyzer.tokenize(q["text"]) for qid, q in dataset.evaluated_queries().items()}
    results: dict[str, float] = {}
    for repeat, k1, b in itertools.product(titles, k1s, bs):
        tokens = [t * repeat + body for t, body in zip(title_tokens, body_tokens, strict=True)]
        index = BM25Index.build_from_tokens(ids, tokens, params={**DEFAULT_PARAMS, "k1": k1, "b": b})
        run: dict[str, dict[str, float]] = {}
        for qid, terms in queries.items():
            known = [t for t in terms if index.df(t) > 0]
            scores = index.full_scores(known) if known else None
            run[qid] = {} if scores is None else {ids[i]: float(scores[i]) for i in top_k(scores, DEPTH)}
        results[f"title x{repeat}, k1 {k1:g}, b {b:g}"] = round(score(dataset.qrels, run, ["ndcg@10"])[0]["ndcg@10"], 4)
    default = f"title x1, k1 {DEFAULT_PARAMS['k1']:g}, b {DEFAULT_PARAMS['b']:g}"
    best = max(results, key=results.__getitem__)
    return {"set": dataset.name, "split": split, "queries": len(queries), "default": results.get(default),
            "best": best, "best_ndcg@10": results[best], "all": results}


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="A BEIR folder (repeatable)")
    parser.add_argument("--split", default="dev", choices=["dev", "train"])
    parser.add_argument("--k1", type=_floats, default=[0.5, 0.7, 0.9, 1.2, 1.5, 2.0])
    parser.add_argument("--b", type=_floats, default=[0.2, 0.3, 0.4, 0.6, 0.75, 0.9])
    parser.add_argument("--title", type=lambda t: [int(x) for x in t.split(",")], default=[1, 2, 3],
                        help="How many times the title's tokens are indexed")
    args = parser.parse_args()
    for data in args.data:
        print(json.dumps(sweep(data, args.split, args.k1, args.b, args.title), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
