"""Building a faiss index over normalised vectors, and calibrating its search parameters to a recall target.

``build_faiss`` makes the index of one type (flat, ivf_sq8, hnsw) with its resolved parameters; ``calibrate`` picks
the smallest nprobe / efSearch on a ladder whose recall@10 against exact search reaches the target (see
``DenseIndex.build`` for why each type and what the figures were).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from indexes.faiss_setup import faiss

INDEX_TYPES = ("flat", "ivf_sq8", "hnsw")
EXACT_BELOW = 100_000  # vectors: "auto" builds an exact (flat) index below this, ivf_sq8 from it on
CALIBRATION_K = 10
CHUNK_ROWS = 65_536  # rows per block in numpy exact search (bounds temporary memory)
_IVF_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096)


_DEFAULTS: dict[str, dict[str, Any]] = {
    "flat": {},
    "ivf_sq8": {
        "nlist": None,  # None: clamp(round(4 * sqrt(n)), 1, min(n // 39, 65536))
        "nprobe": None,  # None: calibrated to reach recall_target
        "train_size": None,  # None: min(n, max(64 * nlist, 10_000))
        "recall_target": 0.97,
        "calibration_queries": 256,
        "seed": 0,
    },
    "hnsw": {
        "M": 32,
        "efConstruction": 40,
        "efSearch": None,  # None: calibrated to reach recall_target
        "recall_target": 0.97,
        "calibration_queries": 256,
        "seed": 0,
    },
}


def auto_index_type(n: int, exact_below: int = EXACT_BELOW) -> str:
    """The index type ``"auto"`` resolves to for ``n`` vectors."""
    return "flat" if n < exact_below else "ivf_sq8"


def normalize_rows(vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
    """Validate a 2-D numeric array and return a new C-contiguous float32 copy with unit-norm rows.

    Rows are scaled by their largest absolute value before the norm is taken, so huge values do not overflow.
    Raises ValueError on a non-2-D / empty / non-numeric array, NaN or inf (also values beyond float32) and
    all-zero rows, naming the first offending row.
    """
    if not isinstance(vectors, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(vectors).__name__}")
    if vectors.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n, dim), got shape {vectors.shape}")
    if vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {vectors.shape})")
    if not (np.issubdtype(vectors.dtype, np.floating) or np.issubdtype(vectors.dtype, np.integer)):
        raise ValueError(f"{what} must be real numbers, got dtype {vectors.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{what} row {row} contains NaN or inf (or a value beyond float32)")
    scale = np.abs(x).max(axis=1)
    if not (scale > 0).all():
        row = int(np.flatnonzero(scale <= 0)[0])
        raise ValueError(f"{what} row {row} is all zeros: it has no direction to normalise")
    x /= scale[:, None]
    x /= np.linalg.norm(x, axis=1)[:, None]
    return x


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a (q, m) score matrix: (scores, columns), best first, ties broken by lower column."""
    q, m = scores.shape
    k = min(k, m)
    full = np.broadcast_to(np.arange(m), (q, m))
    cols = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < m else full.copy()
    sel = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -sel), axis=-1)
    return np.take_along_axis(sel, order, axis=1), np.take_along_axis(cols, order, axis=1)


def check_params(index_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(_DEFAULTS[index_type])
    for key, value in (params or {}).items():
        if key not in merged:
            allowed = ", ".join(sorted(merged)) or "none"
            raise ValueError(f"unknown parameter {key!r} for index type {index_type!r} (allowed: {allowed})")
        merged[key] = value
    for key in ("nlist", "nprobe", "train_size", "M", "efConstruction", "efSearch", "calibration_queries"):
        value = merged.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"parameter {key} must be a positive integer or None, got {value!r}")
    target = merged.get("recall_target")
    if target is not None and not (isinstance(target, int | float) and 0 < target <= 1):
        raise ValueError(f"parameter recall_target must be in (0, 1], got {target!r}")
    return merged


def default_nlist(n: int) -> int:
    """~4 sqrt(n) inverted lists, at most n // 39 (faiss wants >= 39 training points per centroid)."""
    return int(max(1, min(round(4 * math.sqrt(n)), n // 39, 65_536)))


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if size >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)).astype(np.int64)


def _exact_truth(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k positions of ``queries`` against all rows of ``x`` (numpy, blockwise)."""
    best_s: list[np.ndarray] = []
    best_p: list[np.ndarray] = []
    for start in range(0, x.shape[0], CHUNK_ROWS):
        s, c = topk(queries @ x[start : start + CHUNK_ROWS].T, k)
        best_s.append(s)
        best_p.append(c + start)
    s_all, p_all = np.concatenate(best_s, axis=1), np.concatenate(best_p, axis=1)
    _, cols = topk(s_all, k)
    return np.take_along_axis(p_all, cols, axis=1)


def _recall(found: np.ndarray, truth: np.ndarray, k: int, self_pos: np.ndarray | None = None) -> float:
    """Mean recall@k of ``found`` against ``truth``; with ``self_pos``, each row's own position is dropped from
    both lists first (indexed vectors used as queries)."""
    hits = 0
    for row in range(found.shape[0]):
        own = -1 if self_pos is None else self_pos[row]
        f = [p for p in found[row] if p >= 0 and p != own][:k]
        t = [p for p in truth[row] if p != own][:k]
        hits += len(set(f) & set(t))
    return hits / (k * found.shape[0])


def untyped(obj: object) -> Any:
    """faiss's bundled type stubs lag its API (SearchParametersHNSW, IndexHNSW.storage, IndexFlat.get_xb)."""
    return obj


def ivf_params(nprobe: int) -> faiss.SearchParameters:
    params = untyped(faiss).SearchParametersIVF()
    params.nprobe = int(nprobe)
    return params


def hnsw_params(ef_search: int) -> faiss.SearchParameters:
    params = untyped(faiss).SearchParametersHNSW()
    params.efSearch = int(ef_search)
    return params



def build_faiss(
    index_type: str, x: np.ndarray, params: dict[str, Any], queries: np.ndarray | None = None
) -> tuple[faiss.Index, dict[str, Any], dict[str, Any] | None]:
    n, dim = x.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(x)
        return index, params, None
    if index_type == "ivf_sq8":
        nlist = params["nlist"] or default_nlist(n)
        if nlist > n:
            raise ValueError(f"nlist {nlist} exceeds the number of vectors {n}")
        train_size = params["train_size"] or min(n, max(64 * nlist, 10_000))
        train_size = max(min(train_size, n), nlist)
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        ivf.cp.spherical = True
        ivf.cp.seed = int(params["seed"])
        ivf.cp.min_points_per_centroid = 1  # we sampled; silence faiss's "too few points" warning
        ivf.cp.max_points_per_centroid = max(256, math.ceil(train_size / nlist))
        ivf.train(x[_sample(n, train_size, int(params["seed"]))])
        ivf.add(x)
        resolved = {**params, "nlist": int(nlist), "train_size": int(train_size)}
        if params["nprobe"] is None:
            ladder = [p for p in _IVF_LADDER if p < nlist] + [nlist]
            nprobe, calibration = _calibrate(x, resolved, ladder, ivf_params, ivf, "nprobe", queries)
            resolved["nprobe"] = nprobe
        else:
            resolved["nprobe"] = min(int(params["nprobe"]), nlist)
            calibration = None
        return ivf, resolved, calibration
    hnsw = faiss.IndexHNSWFlat(dim, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = int(params["efConstruction"])
    hnsw.add(x)
    resolved = dict(params)
    if params["efSearch"] is None:
        ef, calibration = _calibrate(x, resolved, list(EF_LADDER), hnsw_params, hnsw, "efSearch", queries)
        resolved["efSearch"] = ef
    else:
        calibration = None
    return hnsw, resolved, calibration


def _calibrate(
    x: np.ndarray,
    params: dict[str, Any],
    ladder: list[int],
    make_params: Callable[[int], faiss.SearchParameters],
    index: faiss.Index,
    name: str,
    given: np.ndarray | None = None,
) -> tuple[int, dict[str, Any] | None]:
    """Smallest ladder value whose recall@10 against exact search reaches the target.

    Queries: a sample of ``given`` (query-like vectors) when there are any, else indexed vectors with each
    one's own position excluded.
    """
    n = x.shape[0]
    k = CALIBRATION_K
    if n <= k + 1:  # too few vectors to measure: take the first setting that can reach all of them
        return next((v for v in ladder if v >= n), ladder[-1]), None
    wanted = int(params["calibration_queries"])
    if given is not None and given.shape[0]:
        sample = _sample(given.shape[0], min(wanted, given.shape[0]), int(params["seed"]) + 1)
        queries, fetch, method = given[sample], k, "given query vectors, recall@10 vs exact"
        self_pos = None
    else:
        sample = _sample(n, min(wanted, n), int(params["seed"]) + 1)
        queries, fetch, method = x[sample], k + 1, "indexed vectors as queries, self excluded, recall@10 vs exact"
        self_pos = sample
    truth = _exact_truth(x, queries, fetch)
    target = float(params["recall_target"])
    curve: dict[str, float] = {}
    chosen = ladder[-1]
    for value in ladder:
        _, found = index.search(queries, fetch, params=make_params(value))
        recall = _recall(found, truth, k, self_pos)
        curve[str(value)] = round(recall, 4)
        if recall >= target:
            chosen = value
            break
    return chosen, {
        "method": method,
        "queries": int(sample.size),
        "target": target,
        "parameter": name,
        "chosen": int(chosen),
        "recall_at_10": curve[str(chosen)],
        "reached": curve[str(chosen)] >= target,
        "curve": curve,
    }
