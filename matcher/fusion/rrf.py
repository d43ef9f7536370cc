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
    abstain_credit: float = 1.0,
) -> dict[str, float]:
    """``sum_r w_r / (k + rank_r(d))`` over the runs that contain ``d``.

    ``abstains(r, d)`` says run ``r`` could not have retrieved ``d`` at all. Such a document's sum over the runs
    that could see it is rescaled by ``(seen + credit * abstained) / seen`` (weights): with ``abstain_credit`` 1
    an abstaining run is assumed to agree with the others (a document only one retriever can see is not
    halved); with 0 it counts as a zero. A document a run could see but did not retrieve simply gets nothing
    from that run (that absence is evidence).
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    if not 0.0 <= abstain_credit <= 1.0:
        raise ValueError("abstain_credit must be within [0, 1]")
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
        credited = seen_weight + abstain_credit * (total - seen_weight)
        fused[d] = score * (credited / seen_weight) if seen_weight else 0.0
    return fused
