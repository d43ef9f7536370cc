"""The learned ranker's file and calibration, the feature matrix, and near-duplicate collapse."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from matcher.duplicates import DUPLICATE_COSINE, collapse_duplicates, duplicate_key
from matcher.features import FEATURES, TITLE_CHANNEL, Rendering, feature_matrix, title_columns
from matcher.fusion.learned import DEFAULT_PATH, FORMAT_VERSION, LearnedRanker, RankerFileError
from matcher.records import Patent
from matcher.texts import TITLE_CHARS, title_text, titled


def _model() -> LearnedRanker:
    k = len(FEATURES)
    rng = np.random.default_rng(0)
    return LearnedRanker(FEATURES, rng.normal(size=k), rng.uniform(0.5, 2, size=k), rng.normal(size=k), 0.25,
                         (0.7, -0.4), {"note": "test"})


def test_ranker_file_round_trips(tmp_path: Path) -> None:
    model = _model()
    path = model.save(tmp_path / "ranker_model.json")
    back = LearnedRanker.load(path, FEATURES)
    x = np.random.default_rng(1).normal(size=(7, len(FEATURES)))
    assert np.array_equal(back.margin(x), model.margin(x))
    assert np.array_equal(back.relevance(x), model.relevance(x))
    assert back.calibration == model.calibration and back.info == {"note": "test"}
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION


def test_ranker_file_of_another_version_or_features_is_refused(tmp_path: Path) -> None:
    data = _model().to_dict()
    path = tmp_path / "m.json"
    path.write_text(json.dumps({**data, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(RankerFileError, match="not readable by this build"):
        LearnedRanker.load(path, FEATURES)
    path.write_text(json.dumps({**data, "features": [*FEATURES[:-1], "something_else"]}))
    with pytest.raises(RankerFileError, match="refit"):
        LearnedRanker.load(path, FEATURES)
    path.write_text(json.dumps({**data, "weights": [1.0]}))
    with pytest.raises(RankerFileError, match="one value per feature"):
        LearnedRanker.load(path, FEATURES)
    path.write_text("{not json")
    with pytest.raises(RankerFileError, match=r"m\.json:1: not JSON"):
        LearnedRanker.load(path, FEATURES)


def test_shipped_model_loads_for_the_features_this_build_computes() -> None:
    model = LearnedRanker.load(DEFAULT_PATH, FEATURES)
    assert model.calibration[0] > 0 and model.info["chosen"]


def test_calibrated_relevance_is_monotone_in_the_margin_and_within_0_1() -> None:
    model = LearnedRanker.load(DEFAULT_PATH, FEATURES)
    margins = np.linspace(-30, 30, 2001)
    rel = model.relevance_of_margin(margins)
    assert np.all(np.diff(rel) >= 0) and np.all(np.diff(rel[900:1100]) > 0)
    assert rel.min() >= 0.0 and rel.max() <= 1.0
    with pytest.raises(RankerFileError, match="slope"):
        LearnedRanker(FEATURES, np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.zeros(len(FEATURES)), 0.0,
                      (-1.0, 0.0))


def test_feature_matrix_normalises_within_each_language_and_keeps_channels_apart() -> None:
    pool = np.array([0, 1, 2, 3])
    langs = np.array(["zh", "zh", "en", "en"])
    zh_scores = np.array([4.0, 2.0, 0.0, 0.0])
    en_scores = np.array([0.0, 0.0, 1.0, 0.5])
    renderings = {"zh": Rendering("zh", "电池", False, ["电池"], zh_scores, {0: 4.0, 1: 2.0}),
                  "en": Rendering("en", "battery", True, ["batteri"], en_scores, {2: 1.0, 3: 0.5})}
    dense = {"zh": {1: 0.6, 0: 0.5}, "en": {2: 0.4}}
    cos = np.array([0.5, 0.6, 0.4, 0.1])
    x = feature_matrix(pool, langs, "zh", renderings, dense, cos, np.array([1.0, 0.5, 1.0, 0.0]))
    col = {n: i for i, n in enumerate(FEATURES)}
    # each language's best is 1, and the as-written and translated evidence sit in columns of their own
    assert x[:, col["bm25_rel"]].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert x[:, col["bm25_rel_translated"]].tolist() == [0.0, 0.0, 1.0, 0.5]
    assert x[:, col["bm25_rr"]].tolist() == pytest.approx([10 / 11, 10 / 12, 0, 0])
    assert x[:, col["bm25_rr_translated"]].tolist() == pytest.approx([0, 0, 10 / 11, 10 / 12])
    assert x[:, col["coverage"]].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert x[:, col["coverage_translated"]].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert x[:, col["dense_gap"]].tolist() == pytest.approx([-0.1, 0.0, 0.0, 0.0])
    assert x[:, col["dense_gap_translated"]].tolist() == pytest.approx([0.0, 0.0, 0.0, -0.3])
    assert x[:, col["dense_rr"]].tolist() == pytest.approx([10 / 12, 10 / 11, 0, 0])
    assert x[:, col["dense_rr_translated"]].tolist() == pytest.approx([0, 0, 10 / 11, 0.0])
    # the dense model is one for both languages: compared across the whole pool too
    assert x[:, col["dense_gap_all"]].tolist() == pytest.approx([-0.1, 0.0, -0.2, -0.5])
    assert x[:, col["dense_rr_all"]].tolist() == pytest.approx([10 / 12, 10 / 11, 10 / 13, 10 / 14])
    assert x[:, col["dense_z"]].tolist() == pytest.approx(((cos - cos.mean()) / cos.std()).tolist())
    # no language prior: no column is a language flag (constant within each language, different between them)
    for j, name in enumerate(FEATURES):
        zh_values, en_values = set(x[:2, j].tolist()), set(x[2:, j].tolist())
        assert not (len(zh_values) == 1 and len(en_values) == 1 and zh_values != en_values), name


def _patent(pid: str, title: str, abstract: str) -> Patent:
    return Patent(id=pid, title=title, abstract=abstract, language="zh")


def test_near_duplicates_collapse_under_the_best_ranked() -> None:
    records = {"a": _patent("a", "磷酸铁锂正极材料", "一种低温性能好的正极。"),
               "b": _patent("b", "磷酸铁锂 正极材料!", "一种低温性能好的正极"),  # same text, other punctuation
               "c": _patent("c", "真空泵单向阀", "单向阀。"),
               "d": _patent("d", "真空泵的单向阀", "一种单向阀。"),  # other words, nearly the same vector
               "e": _patent("e", "无关", "无关的记录。")}
    assert duplicate_key(records["a"]) == duplicate_key(records["b"])
    ids = list(records)
    v = np.zeros((5, 3), dtype=np.float32)
    v[0] = [1, 0, 0]
    v[1] = [0, 1, 0]  # a and b are duplicates by text even though their vectors differ
    v[2] = [0, 0, 1]
    v[3] = [0, np.sqrt(1 - 0.96 ** 2), 0.96]  # cosine 0.96 with c
    v[4] = [0, np.sqrt(1 - 0.9 ** 2), 0.9]  # cosine 0.90 with c: not a duplicate
    assert 0.9 < DUPLICATE_COSINE <= 0.96
    snap = SimpleNamespace(dense=SimpleNamespace(vectors=v), bm25=SimpleNamespace(ids=ids))
    ranked = [(0, 5.0), (2, 4.0), (1, 3.0), (3, 2.0), (4, 1.0)]
    groups = collapse_duplicates(snap, ranked, records)  # type: ignore[arg-type]
    assert [(head[0], dups) for head, dups in groups] == [(0, [1]), (2, [3]), (4, [])]


def test_interactions_are_channel_columns_times_the_as_written_query_statistics() -> None:
    from matcher.features import INTERACTIONS, QUERY_STATS, RETRIEVER_FEATURES, query_stats, with_interactions

    rng = np.random.default_rng(3)
    base = rng.uniform(0, 2, size=(5, len(RETRIEVER_FEATURES)))
    col = {n: i for i, n in enumerate(RETRIEVER_FEATURES)}
    base[:, col["bm25_log"]] = [3.0, 1.0, 2.0, 0.0, 0.0]
    base[:, col["coverage"]] = [0.5, 1.0, 0.25, 0.0, 0.0]
    s = query_stats(base)
    assert s.tolist() == pytest.approx([1.0, (3.0 - 2.0) / 3.0, 3.0])  # best coverage, top gap, top score
    x = with_interactions(base)
    assert x.shape == (5, len(FEATURES)) and np.array_equal(x[:, :len(RETRIEVER_FEATURES)], base)
    full = {n: i for i, n in enumerate(FEATURES)}
    for name in ("bm25_rr", "coverage_translated", "dense_gap"):
        for k, stat in enumerate(QUERY_STATS):
            assert x[:, full[f"{name}_x_{stat}"]].tolist() == pytest.approx((base[:, col[name]] * s[k]).tolist())
    assert len(INTERACTIONS) == 12 * len(QUERY_STATS)
    assert with_interactions(np.zeros((0, len(RETRIEVER_FEATURES)))).shape == (0, len(FEATURES))


def test_a_model_over_a_subset_of_the_features_reads_its_columns_by_name(tmp_path: Path) -> None:
    from matcher.features import RETRIEVER_FEATURES

    k = len(RETRIEVER_FEATURES)
    rng = np.random.default_rng(4)
    old = LearnedRanker(RETRIEVER_FEATURES, rng.normal(size=k), rng.uniform(0.5, 2, size=k), rng.normal(size=k),
                        0.1, (0.5, -1.0))
    back = LearnedRanker.load(old.save(tmp_path / "old.json"), FEATURES)
    x = rng.normal(size=(6, len(FEATURES)))
    assert np.allclose(back.margin(x), old.margin(x[:, :k]))


def test_title_channel_columns_by_hand() -> None:
    """The title channel's columns: cosine, gap to the best of the same language, z over the pool, reciprocal rank
    within the language, against hand arithmetic; zero columns without title vectors."""
    cos = np.array([0.5, 0.9, 0.7, 0.6])
    langs = np.array(["zh", "en", "zh", "en"])
    x = title_columns(cos, langs)
    assert x.shape == (4, len(TITLE_CHANNEL))
    np.testing.assert_allclose(x[:, 0], cos)
    np.testing.assert_allclose(x[:, 1], [0.5 - 0.7, 0.0, 0.0, 0.6 - 0.9])
    np.testing.assert_allclose(x[:, 2], (cos - 0.675) / np.sqrt(0.021875))
    np.testing.assert_allclose(x[:, 3], [10 / 12, 10 / 11, 10 / 11, 10 / 12])
    assert title_columns(np.zeros(0), np.zeros(0, dtype=str)).shape == (0, len(TITLE_CHANNEL))
    assert np.all(title_columns(np.full(3, 0.8), np.array(["zh"] * 3))[:, 2] == 0)  # no spread: z is 0, not nan
    pool = np.array([0, 1, 2, 3])
    args = (pool, langs, "zh", {}, {}, np.array([0.3, 0.2, 0.1, 0.0]), np.zeros(4))
    cols = [FEATURES.index(n) for n in TITLE_CHANNEL]
    assert not feature_matrix(*args)[:, cols].any()
    with_titles = feature_matrix(*args, title_cosines=cos)
    np.testing.assert_allclose(with_titles[:, cols], x)
    np.testing.assert_array_equal(np.delete(with_titles, cols, axis=1), np.delete(feature_matrix(*args), cols, axis=1))


def test_title_text_is_the_title_or_the_subject_the_body_opens_with() -> None:
    assert titled("  石墨烯散热膜 ", "本发明公开了一种别的东西，") == "石墨烯散热膜"
    assert titled("", "本发明公开了一种石墨烯散热膜，包括基层。") == "一种石墨烯散热膜"
    assert titled("", "本发明涉及用于预处理金属基底的碱性含水组合物。本发明也涉及") \
        == "用于预处理金属基底的碱性含水组合物"
    assert titled("", "x" * 200) == "x" * TITLE_CHARS  # no opening to read: the first characters
    assert title_text(Patent(id="p", title="", abstract="本申请提供了一种电池包，…")) == "一种电池包"


def _plain_model(seed: int) -> LearnedRanker:
    plain = tuple(f for f in FEATURES if f not in TITLE_CHANNEL)
    rng = np.random.default_rng(seed)
    k = len(plain)
    return LearnedRanker(plain, rng.normal(size=k), rng.uniform(0.5, 2, size=k), rng.normal(size=k), -0.3,
                         (1.3, 0.2), {"note": "no titles"})


def test_a_model_without_titles_rides_in_the_file_and_stands_in_when_there_are_none(tmp_path: Path) -> None:
    from dataclasses import replace

    model = replace(_model(), without_titles=_plain_model(5))
    back = LearnedRanker.load(model.save(tmp_path / "m.json"), FEATURES)
    x = np.random.default_rng(6).normal(size=(9, len(FEATURES)))
    assert back.for_titles(True) is back and np.array_equal(back.margin(x), model.margin(x))
    plain = back.for_titles(False)
    assert plain.info == {"note": "no titles"} and plain.calibration == (1.3, 0.2)
    keep = [FEATURES.index(f) for f in plain.features]
    np.testing.assert_allclose(plain.margin(x), _plain_model(5).margin(x[:, keep]), rtol=0, atol=1e-12)
    x[:, [FEATURES.index(f) for f in TITLE_CHANNEL]] += 100.0  # it reads no title column
    np.testing.assert_allclose(plain.margin(x), _plain_model(5).margin(x[:, keep]), rtol=0, atol=1e-12)
    assert _model().for_titles(False).info == {"note": "test"}  # a file without one: the model itself
    data = model.to_dict()
    data["without_titles"] = _model().to_dict()  # a stand-in that reads titles is no stand-in
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(RankerFileError, match=r"bad\.json: without_titles: uses the title channel"):
        LearnedRanker.load(tmp_path / "bad.json", FEATURES)
    data["without_titles"] = {**_plain_model(5).to_dict(), "weights": [1.0]}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(RankerFileError, match=r"bad\.json: without_titles: weights must have one value per feature"):
        LearnedRanker.load(tmp_path / "bad.json", FEATURES)


def test_the_shipped_model_carries_one_fitted_without_titles() -> None:
    model = LearnedRanker.load(DEFAULT_PATH, FEATURES)
    assert model.uses_titles and model.without_titles is not None
    plain = model.for_titles(False)
    assert not plain.uses_titles and plain.calibration[0] > 0 and "without titles" in plain.info["chosen"]


@pytest.mark.parametrize("titles", [None, "static-64"])
def test_search_ranks_with_the_model_that_fits_the_snapshots_title_vectors(
        tmp_path: Path, sample_patents: list[Patent], titles: str | None) -> None:
    """Over a snapshot without title vectors the search orders and calibrates by the model fitted without them;
    with them, by the full model (its relevance is what a shortlist's floor reads)."""
    from matcher.config import RankerConfig
    from matcher.full_build import build_snapshot
    from matcher.search import Searcher
    from matcher.store import Store
    from matcher.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    with Store(ws.store_path) as store:
        store.write_batch("patents", [p for p in sample_patents if p.abstract][:300], "t")
    build_snapshot(ws, "patents", dense_model="static-64", title_model=titles)
    searcher = Searcher(ws, RankerConfig(dense_model="static-64", title_model=titles))
    try:
        snap = searcher.snapshot("patents")
        assert (snap.titles is not None) == (titles is not None)
        full = searcher.learned_ranker()
        want = full if titles else full.without_titles
        assert want is not None
        query = "锂离子电池 正极材料"
        results = searcher.search(snap, query, 10, np.ones(len(snap.bm25.ids), dtype=bool))
        c = searcher.candidates(snap, query, np.ones(len(snap.bm25.ids), dtype=bool), "hybrid", 100)
        pool, x = searcher.learned_features(snap, c)
        margins = dict(zip(pool.tolist(), want.margin(x).tolist(), strict=True))
        assert results and (c.title_vector is not None) == (titles is not None)
        for r in results:
            pos = snap.bm25.position(r.id)
            assert r.relevance == pytest.approx(float(want.relevance_of_margin(np.array([margins[pos]]))[0]), abs=1e-9)
        order = sorted(margins, key=lambda p: (-round(margins[p], 12), p))
        assert results[0].id == snap.bm25.ids[order[0]]
    finally:
        searcher.close()
