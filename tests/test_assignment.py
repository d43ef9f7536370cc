"""The constrained assignment, property-tested on random candidate score matrices.

Every solution meets every cap; the exact solver equals a brute force on tiny instances and an independent
min-cost flow (networkx network simplex, integer scores) on instances up to 12 x 15; greedy is never below
half the optimum (its stated bound) and never above it.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.assignment import GREEDY_BOUND, Caps, Edges, solve, solve_exact, solve_greedy, total, violations


@st.composite
def instances(draw: st.DrawFn, max_demands: int = 12, max_patents: int = 15,
              max_edges: int | None = None) -> tuple[Edges, Caps]:
    n_d = draw(st.integers(1, max_demands))
    n_p = draw(st.integers(1, max_patents))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    density = draw(st.sampled_from([0.15, 0.4, 0.8, 1.0]))
    scores = rng.integers(0, 101, size=(n_d, n_p)).astype(float)  # integers: the flow check is then exact
    scores[rng.random((n_d, n_p)) > density] = np.nan
    if max_edges is not None:
        cells = np.argwhere(~np.isnan(scores))
        for d, p in cells[max_edges:]:
            scores[d, p] = np.nan
    holders = rng.integers(0, draw(st.integers(1, n_p)), size=n_p)
    groups = rng.integers(0, draw(st.integers(1, n_p)), size=n_p)
    caps = Caps(per_demand=draw(st.integers(1, 4)), per_patent=draw(st.integers(1, 4)),
                per_holder=draw(st.one_of(st.none(), st.integers(1, 6))),
                min_score=float(draw(st.sampled_from([0, 0, 10, 50, 90]))))
    return Edges.from_matrix(scores, holders, groups), caps


def brute_force(edges: Edges, caps: Caps) -> float:
    best = 0.0
    for r in range(len(edges) + 1):
        for subset in itertools.combinations(range(len(edges)), r):
            chosen = np.zeros(len(edges), dtype=bool)
            chosen[list(subset)] = True
            if not violations(edges, caps, chosen):
                best = max(best, total(edges, chosen))
    return best


def flow_optimum(edges: Edges, caps: Caps) -> float:
    """Max-weight flow on the network the exact solver's docstring describes (independent of scipy)."""
    g = nx.DiGraph()
    supply = len(edges) + 1
    g.add_node("s", demand=-supply)
    g.add_node("t", demand=supply)
    g.add_edge("s", "t", capacity=supply, weight=0)  # flow that buys nothing
    for e in range(len(edges)):
        d, p, h, grp, w = (int(edges.demand[e]), int(edges.patent[e]), int(edges.holder[e]), int(edges.group[e]),
                           edges.score[e])
        if not (w >= caps.min_score and w > 0):
            continue
        g.add_edge("s", ("d", d), capacity=caps.per_demand, weight=0)
        g.add_edge(("d", d), ("dg", d, grp), capacity=1, weight=0)
        g.add_edge(("dg", d, grp), ("p", p), capacity=1, weight=-int(w))
        g.add_edge(("p", p), ("h", h), capacity=caps.per_patent, weight=0)
        g.add_edge(("h", h), "t", capacity=caps.per_holder if caps.per_holder is not None else supply, weight=0)
    return float(-nx.cost_of_flow(g, nx.min_cost_flow(g)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_every_constraint_always_holds(instance: tuple[Edges, Caps]) -> None:
    edges, caps = instance
    for method in ("exact", "greedy"):
        chosen = solve(edges, caps, method)  # type: ignore[arg-type]
        assert violations(edges, caps, chosen) == [], method


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_exact_is_the_flow_optimum_and_greedy_within_its_bound(instance: tuple[Edges, Caps]) -> None:
    edges, caps = instance
    exact = total(edges, solve_exact(edges, caps))
    greedy = total(edges, solve_greedy(edges, caps))
    assert exact == pytest.approx(flow_optimum(edges, caps), abs=1e-6)
    assert greedy <= exact + 1e-9
    assert greedy >= GREEDY_BOUND * exact - 1e-9


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_demands=4, max_patents=5, max_edges=10))
def test_exact_equals_brute_force_on_tiny_instances(instance: tuple[Edges, Caps]) -> None:
    edges, caps = instance
    assert total(edges, solve_exact(edges, caps)) == pytest.approx(brute_force(edges, caps), abs=1e-9)


def test_greedy_is_really_suboptimal_sometimes() -> None:
    # greedy takes the 10 and blocks both 9s; the optimum takes the two 9s
    scores = np.array([[10.0, 9.0], [9.0, np.nan]])
    edges = Edges.from_matrix(scores, holders=np.array([0, 1]))
    caps = Caps(per_demand=1, per_patent=1)
    assert total(edges, solve_greedy(edges, caps)) == 10
    assert total(edges, solve_exact(edges, caps)) == 18


def test_holder_and_duplicate_caps_bind() -> None:
    scores = np.full((2, 4), 5.0)
    edges = Edges.from_matrix(scores, holders=np.array([7, 7, 7, 8]), groups=np.array([0, 0, 1, 2]))
    chosen = solve_exact(edges, Caps(per_demand=4, per_patent=2, per_holder=3))
    assert violations(edges, Caps(per_demand=4, per_patent=2, per_holder=3), chosen) == []
    assert total(edges, chosen) == 5 * (3 + 2)  # holder 7: three edges; patent 3 (holder 8): both demands


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="two different holders"):
        Edges.make([0, 1], [0, 0], [1.0, 1.0], [0, 1], [0, 0])
    with pytest.raises(ValueError, match="appears twice"):
        Edges.make([0, 0], [0, 0], [1.0, 2.0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="at least 1"):
        Caps(per_demand=0, per_patent=1)
    empty = Edges.make([], [], [], [], [])
    assert not solve_exact(empty, Caps(1, 1)).any() and not solve_greedy(empty, Caps(1, 1)).any()
