"""The pair model (``matcher.pair_model``): its file, its arithmetic, its cache, and the standing matcher's floor on it.

Whether it is any good is measured by ``eval/pair_fit.py`` on held-out judged pairs, not here."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from indexes.vector_cache import VectorCache
from matcher.chain_segments import SegmentPick, Selection
from matcher.chains import parse_chain
from matcher.pair_model import FEATURES, MODEL_PATH, PairJudge, PairModel, pair_texts, shipped_judge
from matcher.push import PushOptions, build_push
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.shortlist import ShortlistOptions, build_shortlist
from matcher.standing import run_pending
from matcher.store import Store
from tests.test_standing import demands_with_enterprise, live_pairs, make_home, offers, settings


def model(**kw: object) -> PairModel:
    base = {"embedder": "e5-small", "text_chars": 300, "features": list(FEATURES), "mean": [0.8, 0.8, 0.8],
            "scale": [0.05, 0.04, 0.02], "coef": [1.0, 0.5, -0.25], "intercept": -1.5, "min_confidence": 0.35}
    return PairModel(**{**base, **kw})  # type: ignore[arg-type]


def test_the_file_round_trips_and_refuses_a_wrong_version_or_features(tmp_path: Path) -> None:
    m = model(held_out={"test_standing": {"kept": {"pairs": 3}}})
    path = tmp_path / "pair_model.json"
    m.save(path)
    assert PairModel.load(path) == m
    data = json.loads(path.read_text("utf-8"))
    for bad, message in (({"format_version": 2}, "format 2"), ({"features": ["a", "b", "c"]}, "features"),
                         ({"scale": [0.1, 0.0, 0.1]}, "positive"), ({"coef": [1.0]}, "one value")):
        path.write_text(json.dumps({**data, **bad}), "utf-8")
        with pytest.raises(ValueError, match=message):
            PairModel.load(path)
    path.write_text(json.dumps([1, 2]), "utf-8")
    with pytest.raises(ValueError, match="not a pair model"):
        PairModel.load(path)


def test_confidence_is_the_logistic_of_the_standardised_margin_and_monotone_in_it() -> None:
    m = model()
    x = np.array([[0.85, 0.84, 0.82], [0.75, 0.80, 0.80], [0.80, 0.80, 0.80]])
    z = (x - np.array(m.mean)) / np.array(m.scale)
    margin = z @ np.array(m.coef) + m.intercept
    assert np.allclose(m.margin(x), margin)
    assert m.margin(x)[2] == pytest.approx(-1.5)  # at the mean: the intercept alone
    assert np.allclose(m.confidence(x), 1 / (1 + np.exp(-margin)))
    rng = np.random.default_rng(19)
    rows = rng.normal(0.8, 0.05, size=(200, 3))
    order = np.argsort(m.margin(rows))
    assert np.all(np.diff(m.confidence(rows)[order]) >= 0)


def test_the_shipped_model_loads_with_its_floor_and_held_out_figures() -> None:
    m = PairModel.load(MODEL_PATH)
    assert 0.0 < m.min_confidence < 1.0 and m.features == list(FEATURES)
    assert {"test_standing", "test_shortlist_round4"} <= set(m.held_out)
    assert m.fitted_on["pairs"] == sum(m.fitted_on["labels"].values())
    assert asdict(PairModel.load(MODEL_PATH)) == asdict(m)


def test_pair_texts_cut_at_the_model_length(sample_patents: list[Patent], sample_demands: list[Demand]) -> None:
    d, p = sample_demands[0], sample_patents[0]
    d_title, d_text, p_title, p_text = pair_texts(d, p, 40)
    assert d_title == d.title.strip() and d_text.startswith(d_title) and len(d_text) <= 40
    assert p_text.startswith(p_title) and len(p_text) <= 40


@pytest.mark.model  # loads multilingual-e5-small
def test_a_demands_vectors_are_computed_once_through_the_cache(tmp_path: Path, sample_patents: list[Patent],
                                                               sample_demands: list[Demand]) -> None:
    pairs = [(sample_demands[i], sample_patents[j]) for i, j in ((0, 0), (0, 1), (1, 0))]
    with VectorCache(tmp_path / "v.sqlite") as cache:
        judge = PairJudge(PairModel.load(MODEL_PATH), cache)
        first = judge.features(pairs)
        calls: list[int] = []
        e = judge.embedder
        real_q, real_d = e.encode_queries, e.encode_documents
        e.encode_queries = lambda texts, *a, **k: calls.append(len(texts)) or real_q(texts, *a, **k)  # type: ignore
        e.encode_documents = lambda texts, *a, **k: calls.append(len(texts)) or real_d(texts, *a, **k)  # type: ignore
        try:
            again = judge.features(pairs)
        finally:
            e.encode_queries, e.encode_documents = real_q, real_d  # type: ignore[method-assign]
    assert calls == []  # every text came from the cache
    assert np.allclose(first, again, atol=2e-3)  # stored as float16
    uncached = PairJudge(PairModel.load(MODEL_PATH)).features(pairs)
    assert np.allclose(first, uncached, atol=2e-3)
    assert np.all((first >= -1) & (first <= 1))


@pytest.mark.model  # loads multilingual-e5-small
def test_standing_events_are_scored_and_floored_by_the_pair_model(tmp_path: Path, sample_patents: list[Patent],
                                                                  sample_demands: list[Demand]) -> None:
    ws = make_home(tmp_path, offers(sample_patents, 30), demands_with_enterprise(sample_demands, 40))
    off = tmp_path / "off"
    ws_off = make_home(off, offers(sample_patents, 30), demands_with_enterprise(sample_demands, 40))
    run_pending(Searcher(ws_off), settings(confirm=False))
    with Store(ws_off.store_path) as store:
        without = set(live_pairs(store))
    assert without, "the floors-off run found no pair to judge"
    searcher = Searcher(ws)
    run_pending(searcher, settings(confirm=False, pair_model=True, min_confidence=0.0))
    judge = shipped_judge(searcher.vector_cache())
    with Store(ws.store_path) as store:
        rows = store._db.execute("SELECT patent, demand, score, evidence, explanation FROM match_events "
                                 "WHERE saved_search IS NULL").fetchall()
        records_d = store.get_many("demands", sorted({r[1] for r in rows}))
        records_p = store.get_many("patents", sorted({r[0] for r in rows}))
    assert {(r[0], r[1]) for r in rows} == without  # floor 0: the same pairs, now scored by the model
    expected = judge.confidence([(records_d[r[1]], records_p[r[0]]) for r in rows])  # type: ignore[misc]
    for (_, _, score, evidence, explanation), want in zip(rows, expected, strict=True):
        ex = json.loads(explanation)
        assert evidence == "pair_confidence" and score == pytest.approx(want, abs=1e-5)
        assert ex["pair_confidence"] == pytest.approx(score, abs=1e-5) and "relevance" in ex
    scores = sorted({r[2] for r in rows})
    assert len(scores) >= 2
    floor = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # between two events' scores: no ties
    strict = make_home(tmp_path / "strict", offers(sample_patents, 30), demands_with_enterprise(sample_demands, 40))
    run_pending(Searcher(strict), settings(confirm=False, pair_model=True, min_confidence=floor))
    with Store(strict.store_path) as store:
        kept = set(live_pairs(store))
    assert kept == {(r[0], r[1]) for r in rows if r[2] >= floor} and len(kept) < len(rows)


@pytest.mark.model  # loads multilingual-e5-small
def test_push_with_the_pair_model_scores_each_pair_by_it_and_floors_it(tmp_path: Path, sample_patents: list[Patent],
                                                                       sample_demands: list[Demand]) -> None:
    ws = make_home(tmp_path, offers(sample_patents, 30), demands_with_enterprise(sample_demands, 40))
    searcher = Searcher(ws)
    ids = [p.id for p in offers(sample_patents, 30)]
    loose = dict(k=100_000, per_enterprise=1000, explain=False, min_relevance=None, min_similarity=None,
                 min_coverage=None, min_topic_coverage=0.0, reciprocal_k=None)
    plain = build_push(searcher, ids=ids, options=PushOptions(**loose))  # type: ignore[arg-type]
    judged = build_push(searcher, ids=ids, options=PushOptions(**loose, pair_model=True, min_confidence=0.0))  # type: ignore[arg-type]
    assert plain.rows and {(r["demand_id"], r["patent_id"]) for r in judged.rows} == \
        {(r["demand_id"], r["patent_id"]) for r in plain.rows}
    judge = shipped_judge(searcher.vector_cache())
    demands = searcher.store.get_many("demands", [r["demand_id"] for r in judged.rows])
    patents = searcher.store.get_many("patents", [r["patent_id"] for r in judged.rows])
    want = judge.confidence([(demands[r["demand_id"]], patents[r["patent_id"]]) for r in judged.rows])  # type: ignore[misc]
    assert [r["fit"] for r in judged.rows] == pytest.approx(want, abs=1e-5)
    fits = sorted({r["fit"] for r in judged.rows})
    assert len(fits) >= 2
    floor = (fits[len(fits) // 2 - 1] + fits[len(fits) // 2]) / 2
    strict = build_push(searcher, ids=ids, options=PushOptions(**loose, pair_model=True, min_confidence=floor))  # type: ignore[arg-type]
    assert {(r["demand_id"], r["patent_id"]) for r in strict.rows} == \
        {(r["demand_id"], r["patent_id"]) for r in judged.rows if r["fit"] >= floor}
    assert strict.summary["min_confidence"] == floor


@pytest.mark.model  # loads multilingual-e5-small
def test_shortlist_with_the_pair_model_scores_each_pair_by_it_and_floors_it(tmp_path: Path,
                                                                            sample_patents: list[Patent],
                                                                            sample_demands: list[Demand]) -> None:
    ws = make_home(tmp_path, offers(sample_patents, 30), demands_with_enterprise(sample_demands, 40))
    searcher = Searcher(ws)
    psnap, dsnap = searcher.snapshot("patents"), searcher.snapshot("demands")
    chain = parse_chain({"name": "all", "segments": [{"id": "all", "name": "全部", "keywords": {"zh": ["全部"]}}]},
                        "all.yaml")
    every = Selection(chain, [SegmentPick(chain.segments[0], {p: ["all"] for p in range(psnap.facets.size)},
                                          {d: ["all"] for d in range(dsnap.facets.size)})])
    loose = dict(per_demand=100, per_patent=100, explain=False, min_relevance=None, min_similarity=None,
                 min_coverage=None, min_topic_coverage=None, candidates=5, duplicate_similarity=1.01)
    pairs = lambda sl: {(r["demand_id"], r["patent_id"]) for r in sl.rows}  # noqa: E731
    plain = build_shortlist(searcher, chain, ShortlistOptions(**loose), selection=every)  # type: ignore[arg-type]
    judged = build_shortlist(searcher, chain, ShortlistOptions(**loose, pair_model=True, min_confidence=0.0),  # type: ignore[arg-type]
                             selection=every)
    assert plain.rows and pairs(judged) == pairs(plain)  # no cap binds: the floor at 0 keeps every pair
    judge = shipped_judge(searcher.vector_cache())
    demands = searcher.store.get_many("demands", [r["demand_id"] for r in judged.rows])
    patents = searcher.store.get_many("patents", [r["patent_id"] for r in judged.rows])
    want = judge.confidence([(demands[r["demand_id"]], patents[r["patent_id"]]) for r in judged.rows])  # type: ignore[misc]
    assert [r["score"] for r in judged.rows] == pytest.approx(want, abs=1e-5)
    assert [r["pair_confidence"] for r in judged.rows] == pytest.approx(want, abs=1e-5)
    for demand_id in {r["demand_id"] for r in judged.rows}:  # each demand's rows ranked by confidence
        scores = [r["score"] for r in judged.rows if r["demand_id"] == demand_id]
        assert scores == sorted(scores, reverse=True)
    confidences = sorted({r["score"] for r in judged.rows})
    assert len(confidences) >= 2
    floor = (confidences[len(confidences) // 2 - 1] + confidences[len(confidences) // 2]) / 2
    strict = build_shortlist(searcher, chain, ShortlistOptions(**loose, pair_model=True, min_confidence=floor),  # type: ignore[arg-type]
                             selection=every)
    assert pairs(strict) == {(r["demand_id"], r["patent_id"]) for r in judged.rows if r["score"] >= floor}
