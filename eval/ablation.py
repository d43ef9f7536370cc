"""The ablation: every set x every ranker, on the test splits, as a markdown table and JSON.

Rankers: BM25 (bm25s), BM25 with the query translated per document language, dense e5-small, dense USE-m3,
hybrid RRF and hybrid convex (the previous served default, hand-tuned), and the learned hybrid (served). Paired
t-tests compare the served default against every single retriever and the previous default on nDCG@10 and
Recall@100. A set whose queries say which language answers them (``lang`` / ``answer_lang``) also gets its
same-language and cross-language halves. The served ranker's calibrated relevance gets a reliability table: its
top-10 results binned by relevance, against the share of them judged relevant.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from eval.beir import Dataset
from eval.evaluate import evaluate_config
from eval.metrics import METRICS, significance
from eval.runner import EvalConfig, Progress, Workspaces
from matcher.config import load_config

NAMES = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "recall@100": "R@100", "mrr@10": "MRR@10", "map@100": "MAP"}


DENSE_MODELS = ("e5-small", "use-m3")


def configs(extra_models: tuple[str, ...] = (), dense_models: tuple[str, ...] = DENSE_MODELS) -> list[EvalConfig]:
    rows = [EvalConfig(mode="bm25"), EvalConfig(mode="bm25-translated"),
            *(EvalConfig(mode="dense", model=m) for m in dense_models), EvalConfig(mode="hybrid", fusion="rrf"),
            EvalConfig(mode="hybrid", fusion="convex"), EvalConfig(mode="hybrid", fusion="learned")]
    rows += [EvalConfig(mode="hybrid", fusion="rrf", model=m) for m in extra_models]
    return rows


def run_ablation(datasets: list[Dataset], workspaces: Workspaces, home: Path | None = None,
                 progress: Progress | None = None, extra_models: tuple[str, ...] = (),
                 dense_models: tuple[str, ...] = DENSE_MODELS) -> dict[str, Any]:
    served = load_config(home)
    out: dict[str, Any] = {"created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "served_config": served.model_dump(), "sets": []}
    for d in datasets:
        rows = []
        runs = {}
        for config in configs(extra_models, dense_models):
            result, run = evaluate_config(d, config, workspaces, home, progress)
            rows.append({"label": result["label"], "metrics": result["metrics"], "seconds": result["seconds"],
                         "recall_curve": result["recall_curve"], "per_query": result["per_query"]})
            runs[result["label"]] = run
        qrels = _qrels(d, workspaces)
        default_label = EvalConfig().label(served)
        others = [r["label"] for r in rows if r["label"] != default_label and "rrf" not in r["label"]]
        sig = {"pairs": []}
        if default_label in runs:
            for other in others:  # the served default against each, pairwise (not all pairs of all)
                sig["pairs"] += significance(qrels, {default_label: runs[default_label], other: runs[other]})["pairs"]
        halves = _halves(d, rows)
        reliability = _reliability(qrels, runs.get(default_label, {}))
        out["sets"].append({"name": d.name, "split": d.split, "queries": len(qrels), "corpus": len(d.corpus),
                            "rows": rows, "significance": sig, "default": default_label, "halves": halves,
                            "reliability": reliability})
    return out


def _halves(d: Dataset, rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """nDCG@10 per ranker on the same-language and cross-language queries (when the queries say)."""
    half = {qid: ("same-language" if q.get("lang") == q.get("answer_lang") else "cross-language")
            for qid, q in d.queries.items() if q.get("answer_lang")}
    if not half:
        return {}
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        per: dict[str, list[float]] = {}
        for qid, metrics in r["per_query"].items():
            if qid in half:
                per.setdefault(half[qid], []).append(metrics["ndcg@10"])
        out[r["label"]] = {h: sum(v) / len(v) for h, v in sorted(per.items())}
        out[r["label"]].update({f"{h} queries": len(v) for h, v in sorted(per.items())})
    return out


RELIABILITY_BINS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def _reliability(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The served run's top 10 per query, binned by its score (the calibrated relevance): per bin, how many
    results, their mean predicted relevance and the share judged relevant (grade > 0)."""
    pairs = []
    for qid, docs in run.items():
        top = sorted(docs.items(), key=lambda item: -item[1])[:10]
        pairs += [(s, qrels.get(qid, {}).get(doc, 0) > 0) for doc, s in top]
    out = []
    for lo, hi in itertools.pairwise(RELIABILITY_BINS):
        inside = [(s, y) for s, y in pairs if lo <= s < hi or (hi == 1.0 and s == 1.0)]
        if inside:
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "results": len(inside),
                        "mean_relevance": sum(s for s, _ in inside) / len(inside),
                        "share_relevant": sum(y for _, y in inside) / len(inside)})
    return out


def _qrels(d: Dataset, workspaces: Workspaces) -> dict[str, dict[str, int]]:
    from eval.runner import resolve_qrels

    return resolve_qrels(d, workspaces.get(d, None))


def markdown(result: dict[str, Any], command: str) -> str:
    lines = ["# Evaluation results", "",
             f"Made by `{command}` on {result['created']}. Test splits only; the learned ranker was fitted on "
             "the dev splits and the needs set's train split (`pmatch eval tune`, cross-validation in "
             "`eval/tune_dev.json`), the convex weight before it was hand-tuned on the dev splits. "
             "Each set's card (`eval/datasets/<set>/CARD.md`) says how its labels were made and "
             "what that biases. Bold: best in the column.", ""]
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
            lines += ["", "Paired t-tests (served default against each): " + "; ".join(sig) + "."]
        if s.get("halves"):
            names = sorted({h for v in s["halves"].values() for h in v if not h.endswith("queries")})
            first = next(iter(s["halves"].values()))
            lines += ["", "nDCG@10 by half: " + ", ".join(f"{h} ({first.get(h + ' queries', 0)} queries)"
                                                          for h in names), "",
                      "| ranker | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
            for label, v in s["halves"].items():
                best = {h: max(x.get(h, 0) for x in s["halves"].values()) for h in names}
                cells = [f"**{v[h]:.3f}**" if v.get(h) == best[h] else f"{v.get(h, 0):.3f}" for h in names]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if s.get("reliability"):
            lines += ["", "Reliability of the served ranker's calibrated relevance (its top 10 per query):", "",
                      "| relevance | results | mean predicted | share judged relevant |", "|---|---:|---:|---:|"]
            for b in s["reliability"]:
                lines.append(f"| {b['bin']} | {b['results']} | {b['mean_relevance']:.3f} | "
                             f"{b['share_relevant']:.3f} |")
        lines.append("")
    return "\n".join(lines)
