"""Convex combination of min-max normalised scores (the "CombSUM with MinMax" family)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def min_max(run: Mapping[str, float]) -> dict[str, float]:
    """Scale a run's scores to [0, 1]; a run whose scores are all equal maps to 1.0 (all equally good)."""
    if not run:
        return {}
    lo, hi = min(run.values()), max(run.values())
    if hi == lo:
        return {d: 1.0 for d in run}
    return {d: (s - lo) / (hi - lo) for d, s in run.items()}


def convex_fusion(
    runs: Sequence[Mapping[str, float]],
    weights: Sequence[float],
    abstains: Callable[[int, str], bool] | None = None,
    abstain_credit: float = 1.0,
) -> dict[str, float]:
    """``sum_r w_r * minmax_r(d)`` with the weights summing to 1.

    A run that contains no score for ``d`` contributes 0 (it looked and did not find it), unless it abstains
    on ``d`` (could not have found it): then the sum over the runs that could see ``d`` is rescaled by
    ``(seen + credit * abstained) / seen`` (weights) — with ``abstain_credit`` 1 the document is judged by those
    runs alone, with 0 the abstaining run counts as a zero.
    """
    if len(weights) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(weights)} weights")
    if any(x < 0 for x in weights) or abs(sum(weights) - 1.0) > 1e-9:
        raise ValueError(f"weights must be >= 0 and sum to 1, got {list(weights)}")
    if not 0.0 <= abstain_credit <= 1.0:
        raise ValueError("abstain_credit must be within [0, 1]")
    normed = [min_max(run) for run in runs]
    docs = sorted({d for run in runs for d in run})
    fused: dict[str, float] = {}
    for d in docs:
        score = 0.0
        seen_weight = 0.0
        for r, run in enumerate(normed):
            if abstains is not None and d not in run and abstains(r, d):
                continue
            seen_weight += weights[r]
            score += weights[r] * run.get(d, 0.0)
        credited = seen_weight + abstain_credit * (1.0 - seen_weight)
        fused[d] = score * credited / seen_weight if seen_weight else 0.0
    return fused
