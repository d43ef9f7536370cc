"""Metrics and significance tests, computed by ranx (a maintained library, not hand-written formulas).

Reported: nDCG@10 (linear gains, as trec_eval and BEIR compute it), Recall@10, Recall@100, MRR@10 and MAP
(over the top 100). Queries the run left empty
count as zeros, as they should: a query with judged documents that the system answered with nothing failed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ranx import Qrels, Run, compare, evaluate

METRICS = ["ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100"]
RECALL_CURVE = [1, 2, 3, 5, 10, 20, 30, 50, 100]
_EMPTY = "__no_result__"


def _ranx(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> tuple[Qrels, Run]:
    # ranx wants every judged query present in the run; an empty answer becomes one unjudged placeholder
    full = {qid: (run.get(qid) or {_EMPTY: 0.0}) for qid in qrels}
    return Qrels(qrels), Run(full)


def score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
          metrics: list[str] | None = None) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(mean of each metric, per-query values)."""
    metrics = metrics or METRICS
    q, r = _ranx(qrels, run)
    per = evaluate(q, r, metrics, return_mean=False, make_comparable=True)
    if not isinstance(per, dict):  # ranx returns a bare array when asked for one metric
        per = {metrics[0]: per}
    qids = list(q.keys())
    per_query = {qid: {m: float(per[m][i]) for m in metrics} for i, qid in enumerate(qids)}
    means = {m: float(np.mean(per[m])) for m in metrics}
    return means, per_query


def recall_curve(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[int, float]:
    means, _ = score(qrels, run, [f"recall@{k}" for k in RECALL_CURVE])
    return {k: means[f"recall@{k}"] for k in RECALL_CURVE}


def significance(qrels: dict[str, dict[str, int]], runs: dict[str, dict[str, dict[str, float]]],
                 metrics: list[str] | None = None, test: str = "student") -> dict[str, Any]:
    """Paired significance tests between every pair of runs (ranx.compare; two-sided, p < 0.05)."""
    metrics = metrics or ["ndcg@10", "recall@100"]
    q = Qrels(qrels)
    ranx_runs = []
    for name, run in runs.items():
        _, r = _ranx(qrels, run)
        r.name = name
        ranx_runs.append(r)
    report = compare(q, ranx_runs, metrics=metrics, stat_test=test, make_comparable=True)
    out: dict[str, Any] = {"test": test, "metrics": metrics, "pairs": []}
    names = list(runs)
    for a in names:
        for b in names:
            if a >= b:
                continue
            for m in metrics:
                p = float(report.comparisons[a, b][m]["p_value"])
                out["pairs"].append({"a": a, "b": b, "metric": m, "p_value": p,
                                     "a_mean": float(report.results[a][m]), "b_mean": float(report.results[b][m]),
                                     "significant": p < 0.05})
    return out
