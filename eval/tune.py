"""Tuning the fusion on dev splits only, chosen by mean nDCG@10 across sets.

Swept: the fusion method (RRF with k, or a convex combination with BM25's weight) and the abstention credit
(how a document BM25 cannot see, being in another language, is credited for BM25's share). The retrievers run
once per query; each setting only re-fuses their candidates, exactly as ``Searcher.search`` would.

Each set counts equally (a macro average), so the 300-query known-item set cannot outvote the 15 judged demands.
The winner is written to the ranker config that ``pmatch search`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.beir import Dataset
from eval.metrics import score
from eval.runner import DEPTH, Progress, Workspaces, resolve_qrels
from matcher.config import RankerConfig, load_config, save_config
from matcher.filters import PatentFilters
from matcher.search import Searcher

RRF_KS = (10, 30, 60, 100)
CONVEX_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ABSTAIN_CREDITS = (0.0, 0.25, 0.5, 0.75, 1.0)


def grid(base: RankerConfig) -> list[RankerConfig]:
    settings: list[dict[str, Any]] = []
    for credit in ABSTAIN_CREDITS:
        settings += [{"fusion": "rrf", "rrf_k": k, "abstain_credit": credit} for k in RRF_KS]
        settings += [{"fusion": "convex", "convex_weight_bm25": w, "abstain_credit": credit} for w in CONVEX_WEIGHTS]
    return [RankerConfig.model_validate({**base.model_dump(), "mode": "hybrid", **s}) for s in settings]


def describe(cfg: RankerConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"fusion": cfg.fusion, "abstain_credit": cfg.abstain_credit}
    out["param"] = cfg.rrf_k if cfg.fusion == "rrf" else cfg.convex_weight_bm25
    return out


def tune(datasets: list[Dataset], workspaces: Workspaces, home: Path | None = None,
         progress: Progress | None = None) -> dict[str, Any]:
    for d in datasets:
        if d.split != "dev":
            raise ValueError(f"{d.path}: tuning reads dev splits only (got {d.split!r})")
    base = load_config(home)
    configs = grid(base)
    table: list[dict[str, Any]] = [{**describe(c), "ndcg@10": {}} for c in configs]
    references: dict[str, dict[str, float]] = {"bm25": {}, "dense": {}}
    everything = PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"])
    for d in datasets:
        ws = workspaces.get(d, base.dense_model, progress)
        qrels = resolve_qrels(d, ws)
        searcher = Searcher(ws, base)
        snap = searcher.snapshot("patents")
        mask = snap.facets.patent_mask(everything)
        queries = d.evaluated_queries()
        candidates = {}
        for i, (qid, q) in enumerate(queries.items(), 1):
            candidates[qid] = searcher.candidates(snap, q["text"], mask, "hybrid", max(base.candidates, DEPTH))
            if progress:
                progress(f"retrieve {d.name}", i, len(queries))

        def run_of(fused_by_query: dict[str, dict[int, float]], ids: list[str] = snap.bm25.ids) -> (
                dict[str, dict[str, float]]):
            run = {}
            for qid, fused in fused_by_query.items():
                top = sorted(fused.items(), key=lambda item: (-round(item[1], 12), item[0]))[:DEPTH]
                run[qid] = {ids[p]: s for p, s in top}
            return run

        for name in ("bm25", "dense"):
            run = run_of({qid: searcher.fuse(snap, c, name) for qid, c in candidates.items()})  # type: ignore[arg-type]
            references[name][d.name] = score(qrels, run, ["ndcg@10"])[0]["ndcg@10"]
        for i, (cfg, row) in enumerate(zip(configs, table, strict=True), 1):
            run = run_of({qid: searcher.fuse(snap, c, "hybrid", cfg) for qid, c in candidates.items()})
            row["ndcg@10"][d.name] = score(qrels, run, ["ndcg@10"])[0]["ndcg@10"]
            if progress:
                progress(f"fuse {d.name}", i, len(configs))
        searcher.close()
    for row in table:
        row["mean_ndcg@10"] = sum(row["ndcg@10"].values()) / len(row["ndcg@10"])
    best = max(table, key=lambda r: (round(r["mean_ndcg@10"], 6), r["fusion"] == "rrf", r["abstain_credit"]))
    refs = {name: {**vals, "mean": sum(vals.values()) / len(vals)} for name, vals in references.items()}
    return {"grid": table, "best": best, "references": refs, "model": base.dense_model}


def apply(best: dict[str, Any], base: RankerConfig, path: Path) -> RankerConfig:
    updates: dict[str, Any] = {"fusion": best["fusion"], "abstain_credit": best["abstain_credit"]}
    updates["rrf_k" if best["fusion"] == "rrf" else "convex_weight_bm25"] = best["param"]
    config = RankerConfig.model_validate({**base.model_dump(), **updates})
    save_config(config, path)
    return config


def tuned_config_path(home: Path | None) -> Path:
    return (home or Path(".pmatch")) / "ranker.json"
