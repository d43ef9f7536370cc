"""Fusion arithmetic, checked exactly as ranx's tests do, plus the one-retriever and abstention cases."""

from __future__ import annotations

import pytest

from matcher.fusion import convex_fusion, rrf_fusion
from matcher.fusion.convex import min_max
from matcher.fusion.rrf import ranks

BM25 = {"a": 12.0, "b": 9.0, "c": 3.0}
DENSE = {"b": 0.91, "d": 0.88, "a": 0.80}


def test_rrf_exact() -> None:
    fused = rrf_fusion([BM25, DENSE], k=60)
    assert fused["a"] == pytest.approx(1 / (60 + 1) + 1 / (60 + 3), abs=0)
    assert fused["b"] == pytest.approx(1 / (60 + 2) + 1 / (60 + 1), abs=0)
    assert fused["c"] == pytest.approx(1 / (60 + 3), abs=0)
    assert fused["d"] == pytest.approx(1 / (60 + 2), abs=0)
    assert sorted(fused, key=lambda d: -fused[d]) == ["b", "a", "d", "c"]


def test_rrf_weights_and_k() -> None:
    fused = rrf_fusion([BM25, DENSE], k=10, weights=[2.0, 1.0])
    assert fused["a"] == pytest.approx(2 / 11 + 1 / 13, abs=0)


def test_rrf_single_retriever_document_not_halved_when_other_abstains() -> None:
    # "d" is a document BM25 could not see (say, another language): it is scored on the dense run alone,
    # rescaled to the full weight, i.e. 2 * 1/(60+2), the same scale as a document both runs found.
    fused = rrf_fusion([BM25, DENSE], k=60, abstains=lambda r, d: r == 0 and d == "d")
    assert fused["d"] == pytest.approx(2 / (60 + 2), abs=0)
    # "c" was visible to dense but not retrieved by it: that absence counts, no rescaling
    assert fused["c"] == pytest.approx(1 / (60 + 3), abs=0)


def test_rrf_partial_abstain_credit() -> None:
    half = rrf_fusion([BM25, DENSE], k=60, abstains=lambda r, d: r == 0 and d == "d", abstain_credit=0.5)
    assert half["d"] == pytest.approx((1 / (60 + 2)) * 1.5, abs=0)  # (seen 1 + 0.5 * abstained 1) / seen 1
    none = rrf_fusion([BM25, DENSE], k=60, abstains=lambda r, d: r == 0 and d == "d", abstain_credit=0.0)
    assert none["d"] == pytest.approx(1 / (60 + 2), abs=0) == rrf_fusion([BM25, DENSE], k=60)["d"]
    with pytest.raises(ValueError, match="abstain_credit"):
        rrf_fusion([BM25], abstain_credit=1.5)


def test_rrf_one_run_and_empty() -> None:
    assert rrf_fusion([BM25]) == {d: 1 / (60 + r) for d, r in (("a", 1), ("b", 2), ("c", 3))}
    assert rrf_fusion([{}, {}]) == {}
    assert rrf_fusion([BM25, {}])["a"] == pytest.approx(1 / 61, abs=0)


def test_ranks_break_ties_by_id() -> None:
    assert ranks({"z": 1.0, "a": 1.0, "m": 2.0}) == {"m": 1, "a": 2, "z": 3}


def test_min_max() -> None:
    assert min_max({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert min_max({"a": 5.0}) == {"a": 1.0}
    assert min_max({}) == {}


def test_convex_exact() -> None:
    fused = convex_fusion([BM25, DENSE], weights=[0.3, 0.7])
    # BM25 minmax: a=1, b=(9-3)/9=2/3, c=0 ; dense minmax: b=1, d=(0.88-0.80)/0.11, a=0
    assert fused["a"] == pytest.approx(0.3 * 1 + 0.7 * 0)
    assert fused["b"] == pytest.approx(0.3 * (6 / 9) + 0.7 * 1)
    assert fused["c"] == pytest.approx(0.0)
    assert fused["d"] == pytest.approx(0.7 * (0.08 / 0.11))


def test_convex_abstention_renormalises() -> None:
    fused = convex_fusion([BM25, DENSE], weights=[0.3, 0.7], abstains=lambda r, d: r == 0 and d == "d")
    assert fused["d"] == pytest.approx(0.08 / 0.11)  # dense alone, full weight


def test_convex_partial_abstain_credit() -> None:
    fused = convex_fusion([BM25, DENSE], weights=[0.3, 0.7], abstains=lambda r, d: r == 0 and d == "d",
                          abstain_credit=0.5)
    assert fused["d"] == pytest.approx(0.7 * (0.08 / 0.11) * (0.7 + 0.5 * 0.3) / 0.7)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        convex_fusion([BM25, DENSE], weights=[0.5, 0.6])
    with pytest.raises(ValueError, match="weights"):
        rrf_fusion([BM25, DENSE], weights=[1.0])
    with pytest.raises(ValueError, match="k must be"):
        rrf_fusion([BM25], k=-1)


def test_parity_with_ranx() -> None:
    ranx = pytest.importorskip("ranx")
    qrun_a = ranx.Run({"q": BM25})
    qrun_b = ranx.Run({"q": DENSE})
    theirs = ranx.fuse(runs=[qrun_a, qrun_b], method="rrf", params={"k": 60}).to_dict()["q"]
    ours = rrf_fusion([BM25, DENSE], k=60)
    assert set(theirs) == set(ours)
    for d in ours:
        assert ours[d] == pytest.approx(theirs[d], rel=1e-9)
    theirs = ranx.fuse(runs=[qrun_a, qrun_b], norm="min-max", method="wsum", params={"weights": [0.3, 0.7]})
    for d, s in theirs.to_dict()["q"].items():
        assert convex_fusion([BM25, DENSE], weights=[0.3, 0.7])[d] == pytest.approx(s, rel=1e-9)
