"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def ranks(run: Mapping[str, float]) -> dict[str, int]:
    """1-based ranks by descending score; ties broken by id so results are reproducible."""
    ordered = sorted(run.items(), key=lambda item: (-item[1], item[0]))
    return {doc_id: i for i, (doc_id, _) in enumerate(ordered, 1)}


def rrf_fusion(
    runs: Sequence[Mapping[str, float]],
    k: int = 60,
    weights: Sequence[float] | None = None,
    abstains: Callable[[int, str], bool] | None = None,
) -> dict[str, float]:
    """``sum_r w_r / (k + rank_r(d))`` over the runs that contain ``d``.

    ``abstains(r, d)`` says run ``r`` could not have retrieved ``d`` at all. For such documents the sum over the
    runs that could see ``d`` is rescaled by ``total weight / weight of those runs``, so a document only one
    retriever can see is scored on that retriever's terms, not halved. A document a run could see but did
    not retrieve simply gets nothing from that run (that absence is evidence).
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    w = list(weights) if weights is not None else [1.0] * len(runs)
    if len(w) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(w)} weights")
    total = sum(w)
    run_ranks = [ranks(run) for run in runs]
    docs = sorted({d for run in runs for d in run})
    fused: dict[str, float] = {}
    for d in docs:
        score = 0.0
        seen_weight = 0.0
        for r, rk in enumerate(run_ranks):
            if abstains is not None and d not in rk and abstains(r, d):
                continue
            seen_weight += w[r]
            if d in rk:
                score += w[r] / (k + rk[d])
        fused[d] = score * (total / seen_weight) if seen_weight else 0.0
    return fused
