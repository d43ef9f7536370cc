"""The ablation: every set x every ranker, on the test splits, as a markdown table and JSON.

Rankers: BM25 by the rank-bm25 reference, BM25 (bm25s), dense e5-small, dense USE-m3, hybrid RRF and hybrid
convex (the hybrids with the served dense model and the tuned fusion parameters). Paired t-tests compare the
served default against BM25 and against dense on nDCG@10 and Recall@100.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eval.beir import Dataset
from eval.evaluate import evaluate_config
from eval.metrics import METRICS, significance
from eval.runner import EvalConfig, Progress, Workspaces
from matcher.config import load_config

NAMES = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "recall@100": "R@100", "mrr@10": "MRR@10", "map@100": "MAP"}


def configs(extra_models: tuple[str, ...] = ()) -> list[EvalConfig]:
    rows = [EvalConfig(mode="rank-bm25"), EvalConfig(mode="bm25"), EvalConfig(mode="dense", model="e5-small"),
            EvalConfig(mode="dense", model="use-m3"), EvalConfig(mode="hybrid", fusion="rrf"),
            EvalConfig(mode="hybrid", fusion="convex")]
    rows += [EvalConfig(mode="hybrid", fusion="rrf", model=m) for m in extra_models]
    return rows


def run_ablation(datasets: list[Dataset], workspaces: Workspaces, home: Path | None = None,
                 progress: Progress | None = None, extra_models: tuple[str, ...] = ()) -> dict[str, Any]:
    served = load_config(home)
    out: dict[str, Any] = {"created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "served_config": served.model_dump(), "sets": []}
    for d in datasets:
        rows = []
        runs = {}
        for config in configs(extra_models):
            result, run = evaluate_config(d, config, workspaces, home, progress)
            rows.append({"label": result["label"], "metrics": result["metrics"], "seconds": result["seconds"],
                         "recall_curve": result["recall_curve"], "per_query": result["per_query"]})
            runs[result["label"]] = run
        qrels = _qrels(d, workspaces)
        default_label = EvalConfig().label(served)
        dense_label = EvalConfig(mode="dense").label(served)
        compared = {name: runs[name] for name in (default_label, "bm25", dense_label) if name in runs}
        sig = significance(qrels, compared) if len(compared) > 1 else {}
        out["sets"].append({"name": d.name, "split": d.split, "queries": len(qrels), "corpus": len(d.corpus),
                            "rows": rows, "significance": sig, "default": default_label})
    return out


def _qrels(d: Dataset, workspaces: Workspaces) -> dict[str, dict[str, int]]:
    from eval.runner import resolve_qrels

    return resolve_qrels(d, workspaces.get(d, None))


def markdown(result: dict[str, Any], command: str) -> str:
    lines = ["# Evaluation results", "",
             f"Made by `{command}` on {result['created']}. Test splits only; the fusion parameters were tuned on "
             "the dev splits (`pmatch eval tune`). Each set's card (`eval/datasets/<set>/CARD.md`) says how its "
             "labels were made and what that biases. Bold: best in the column.", ""]
    for s in result["sets"]:
        lines += [f"## {s['name']} ({s['split']}, {s['queries']} queries, {s['corpus']:,} documents)", ""]
        lines.append("| ranker | " + " | ".join(NAMES[m] for m in METRICS) + " | s |")
        lines.append("|---|" + "---:|" * (len(METRICS) + 1))
        best = {m: max(r["metrics"][m] for r in s["rows"]) for m in METRICS}
        for r in s["rows"]:
            label = r["label"] + (" **(served default)**" if r["label"] == s["default"] else "")
            cells = [(f"**{r['metrics'][m]:.3f}**" if r["metrics"][m] == best[m] else f"{r['metrics'][m]:.3f}")
                     for m in METRICS]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
        if s["significance"]:
            sig = [f"{p['a']} vs {p['b']} on {p['metric']}: p = {p['p_value']:.3g}"
                   + (" (significant)" if p["significant"] else " (not significant)")
                   for p in s["significance"]["pairs"]]
            lines += ["", "Paired t-tests: " + "; ".join(sig) + "."]
        lines.append("")
    return "\n".join(lines)
