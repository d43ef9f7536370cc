"""Constrained assignment of patents to demands: pure functions on candidate (demand, patent, score) edges.

The problem (a capacitated b-matching with side constraints). Choose edges to maximise the total score with

* each demand at most ``per_demand`` patents;
* each patent at most ``per_patent`` demands;
* each holder (applicant) at most ``per_holder`` edges over all its patents (optional);
* per demand, at most one patent of each near-duplicate group (diversity: a shortlist never holds two
  copies of the same invention; the caller decides the groups);
* only edges scoring at least ``min_score`` (and above 0: an edge worth nothing is never "assigned").

**Exact, with every constraint.** The constraints form two laminar families over the edges: on the demand side
``(demand, group) ⊂ demand``, on the patent side ``patent ⊂ holder`` (each patent has one holder). That is the
arc structure of a flow network

    source -> demand (cap per_demand) -> (demand, group) (cap 1) -> patent (one arc per edge, cap 1, gain score)
           -> holder (cap per_patent on patent->holder) -> sink (cap per_holder)

so the constraint matrix is a network matrix, hence totally unimodular, and the linear programme's optimum is
attained at an integral vertex. ``solve_exact`` gives that 0/1 programme to HiGHS (``scipy.optimize.milp``):
its root LP relaxation is already integral, so it returns the exact optimum of the whole problem without
branching, with the float scores as they are (no scaling to integers as a min-cost-flow code would need).
(Maximal-marginal-relevance diversity was rejected for this reason: it is sequential per demand and does not
decompose into capacities, so no exact optimum would be available.)

**Greedy baseline** (``solve_greedy``): edges by descending score, each taken if every cap still allows it.
Both sides are laminar matroids, so the feasible sets are the intersection of two matroids, and greedy is a
1/2-approximation (Korte & Hausmann 1978; Fisher, Nemhauser & Wolsey 1978): ``greedy >= optimum / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

Method = Literal["exact", "greedy"]
GREEDY_BOUND = 0.5  # greedy total >= GREEDY_BOUND * optimum


@dataclass(frozen=True)
class Caps:
    per_demand: int
    per_patent: int
    per_holder: int | None = None
    min_score: float = 0.0

    def __post_init__(self) -> None:
        for name in ("per_demand", "per_patent", "per_holder"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")


@dataclass(frozen=True)
class Edges:
    """Candidate edges as parallel arrays. Labels are any integers (they need not be contiguous)."""

    demand: np.ndarray
    patent: np.ndarray
    score: np.ndarray
    holder: np.ndarray  # the patent's holder, per edge; one holder per patent
    group: np.ndarray  # near-duplicate group, per edge; at most one edge per (demand, group) is chosen

    def __post_init__(self) -> None:
        n = len(self.score)
        for name in ("demand", "patent", "holder", "group"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"edges: {name} has {len(getattr(self, name))} entries, score has {n}")
        if n and not np.all(np.isfinite(self.score)):
            raise ValueError("edges: scores must be finite")
        if n:
            pairs = np.unique(np.stack([self.patent, self.holder]), axis=1)
            if len(np.unique(pairs[0])) != pairs.shape[1]:
                raise ValueError("edges: a patent has two different holders")
            dp = np.unique(np.stack([self.demand, self.patent]), axis=1)
            if dp.shape[1] != n:
                raise ValueError("edges: a (demand, patent) pair appears twice")

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def make(cls, demand: object, patent: object, score: object, holder: object, group: object) -> Edges:
        return cls(np.asarray(demand, dtype=np.int64), np.asarray(patent, dtype=np.int64),
                   np.asarray(score, dtype=np.float64), np.asarray(holder, dtype=np.int64),
                   np.asarray(group, dtype=np.int64))

    @classmethod
    def from_matrix(cls, scores: np.ndarray, holders: np.ndarray, groups: np.ndarray | None = None) -> Edges:
        """Edges of a demands x patents score matrix (NaN = not a candidate); ``holders[p]`` is patent p's
        holder; ``groups[p]`` its near-duplicate group (default: every patent its own)."""
        scores = np.asarray(scores, dtype=np.float64)
        d, p = np.nonzero(~np.isnan(scores))
        holders = np.asarray(holders, dtype=np.int64)
        groups = np.arange(scores.shape[1]) if groups is None else np.asarray(groups, dtype=np.int64)
        return cls.make(d, p, scores[d, p], holders[p], groups[p])


def eligible(edges: Edges, caps: Caps) -> np.ndarray:
    """Edges that may be chosen at all: scoring at least ``min_score`` and above 0."""
    return (edges.score >= caps.min_score) & (edges.score > 0)


def _dense_labels(*columns: np.ndarray) -> tuple[np.ndarray, int]:
    """One contiguous label 0..k-1 per distinct tuple of the columns."""
    if len(columns[0]) == 0:
        return np.zeros(0, dtype=np.int64), 0
    _, labels = np.unique(np.stack(columns), axis=1, return_inverse=True)
    labels = labels.reshape(-1)
    return labels, int(labels.max()) + 1


def _constraint_rows(edges: Edges, caps: Caps) -> tuple[sparse.csr_matrix, np.ndarray]:
    """A x <= b for the four kinds of caps (only rows that can bind)."""
    blocks: list[tuple[np.ndarray, int, float]] = [
        (*_dense_labels(edges.demand), caps.per_demand),
        (*_dense_labels(edges.patent), caps.per_patent),
        (*_dense_labels(edges.demand, edges.group), 1),
    ]
    if caps.per_holder is not None:
        blocks.append((*_dense_labels(edges.holder), caps.per_holder))
    rows, cols, bounds = [], [], []
    offset = 0
    edge_ids = np.arange(len(edges))
    for labels, count, cap in blocks:
        sizes = np.bincount(labels, minlength=count)
        binding = sizes > cap  # a set with no more edges than its cap cannot be violated
        keep = binding[labels]
        new_index = np.cumsum(binding) - 1
        rows.append(offset + new_index[labels[keep]])
        cols.append(edge_ids[keep])
        bounds.append(np.full(int(binding.sum()), cap, dtype=np.float64))
        offset += int(binding.sum())
    a = sparse.csr_matrix((np.ones(sum(len(c) for c in cols)), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(offset, len(edges)))
    return a, np.concatenate(bounds)


def solve_exact(edges: Edges, caps: Caps) -> np.ndarray:
    """The chosen edges (boolean mask) of a maximum-total-score assignment meeting every cap (see the module)."""
    chosen = np.zeros(len(edges), dtype=bool)
    usable = np.flatnonzero(eligible(edges, caps))
    if len(usable) == 0:
        return chosen
    sub = Edges(edges.demand[usable], edges.patent[usable], edges.score[usable], edges.holder[usable],
                edges.group[usable])
    a, b = _constraint_rows(sub, caps)
    constraints = [LinearConstraint(a, -np.inf, b)] if a.shape[0] else []
    result = milp(-sub.score, constraints=constraints, integrality=np.ones(len(sub)), bounds=Bounds(0, 1),
                  options={"presolve": True})
    if not result.success or result.x is None:  # cannot happen for a feasible 0/1 box; say so if it does
        raise RuntimeError(f"assignment solver failed: {result.message}")
    chosen[usable] = result.x > 0.5
    return chosen


def solve_greedy(edges: Edges, caps: Caps) -> np.ndarray:
    """Highest score first, if every cap still allows it (ties: lower demand, then lower patent label)."""
    chosen = np.zeros(len(edges), dtype=bool)
    usable = np.flatnonzero(eligible(edges, caps))
    order = usable[np.lexsort((edges.patent[usable], edges.demand[usable], -edges.score[usable]))]
    per_demand: dict[int, int] = {}
    per_patent: dict[int, int] = {}
    per_holder: dict[int, int] = {}
    groups: set[tuple[int, int]] = set()
    for e in order:
        d, p, h, g = int(edges.demand[e]), int(edges.patent[e]), int(edges.holder[e]), int(edges.group[e])
        if (per_demand.get(d, 0) >= caps.per_demand or per_patent.get(p, 0) >= caps.per_patent
                or (caps.per_holder is not None and per_holder.get(h, 0) >= caps.per_holder) or (d, g) in groups):
            continue
        chosen[e] = True
        per_demand[d] = per_demand.get(d, 0) + 1
        per_patent[p] = per_patent.get(p, 0) + 1
        per_holder[h] = per_holder.get(h, 0) + 1
        groups.add((d, g))
    return chosen


def solve(edges: Edges, caps: Caps, method: Method = "exact") -> np.ndarray:
    if method == "exact":
        return solve_exact(edges, caps)
    if method == "greedy":
        return solve_greedy(edges, caps)
    raise ValueError(f"method must be exact or greedy, not {method!r}")


def violations(edges: Edges, caps: Caps, chosen: np.ndarray) -> list[str]:
    """Every broken constraint of an assignment (empty when it is feasible)."""
    out: list[str] = []
    picked = np.flatnonzero(chosen)
    bad = picked[~eligible(edges, caps)[picked]]
    out += [f"edge {int(e)} scores {edges.score[e]} < min_score {caps.min_score} (or <= 0)" for e in bad]
    checks: list[tuple[str, tuple[np.ndarray, ...], int | None]] = [
        ("demand", (edges.demand,), caps.per_demand), ("patent", (edges.patent,), caps.per_patent),
        ("holder", (edges.holder,), caps.per_holder), ("(demand, group)", (edges.demand, edges.group), 1)]
    for name, columns, cap in checks:
        if cap is None or len(picked) == 0:
            continue
        keys, counts = np.unique(np.stack([c[picked] for c in columns]), axis=1, return_counts=True)
        for i in np.flatnonzero(counts > cap):
            out.append(f"{name} {tuple(int(k) for k in keys[:, i])} has {int(counts[i])} edges > cap {cap}")
    return out


def total(edges: Edges, chosen: np.ndarray) -> float:
    return float(edges.score[chosen].sum())
