"""How a dense index answers a query batch: exact blockwise numpy search, faiss search (optionally through a bitmap
selector, widening the search by the filter's selectivity), re-scoring of 8-bit candidates on the stored vectors, and
padding short result rows. ``DenseIndex`` (``indexes.dense``) decides which path a query takes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from indexes.dense_build import CALIBRATION_K, CHUNK_ROWS, EF_LADDER, hnsw_params, ivf_params, topk
from indexes.faiss_setup import SMALL_QUERY_BATCH, faiss, one_omp_thread

Rows = Callable[[int, int, np.ndarray | None], np.ndarray]  # (start, stop, positions) -> float32 vectors


def pad(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    q, have = positions.shape
    if have >= k:
        return scores[:, :k], positions[:, :k]
    out_s = np.full((q, k), -np.inf, dtype=np.float32)
    out_p = np.full((q, k), -1, dtype=np.int64)
    out_s[:, :have] = scores
    out_p[:, :have] = positions
    return out_s, out_p



def exact_search(rows: Rows, size: int, q: np.ndarray, k: int, positions: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Exact numpy search over ``positions`` (None = all ``size``), blockwise: (scores, positions), unpadded."""
    total = size if positions is None else positions.size
    cand_s: list[np.ndarray] = []
    cand_p: list[np.ndarray] = []
    for start in range(0, total, CHUNK_ROWS):
        s, cols = topk(q @ rows(start, start + CHUNK_ROWS, positions).T, k)
        cols = cols + start
        cand_s.append(s)
        cand_p.append(cols if positions is None else positions[cols])
    s_all, p_all = np.concatenate(cand_s, axis=1), np.concatenate(cand_p, axis=1)
    scores, cols = topk(s_all, k)
    return scores.astype(np.float32), np.take_along_axis(p_all, cols, axis=1).astype(np.int64)


def faiss_search(index: faiss.Index, index_type: str, index_params: dict[str, Any], vectors: np.ndarray,
                 q: np.ndarray, k: int, mask: np.ndarray | None, fraction: float, widen: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """faiss search, optionally restricted by a bitmap selector.

    With a selector keeping ``fraction`` of the index, IVF's nprobe and HNSW's efSearch are divided by
    that fraction (capped at nlist / 4096): about as many allowed candidates are visited as without a
    filter, so filtered recall stays near unfiltered recall at about the same cost.
    """
    bitmap = None
    sel = None
    if mask is not None:
        bitmap = np.packbits(mask, bitorder="little")  # faiss: bit i&7 of byte i>>3
        sel = faiss.IDSelectorBitmap(mask.size, faiss.swig_ptr(bitmap))
    boost = widen / max(fraction, 1e-9)
    params: faiss.SearchParameters | None
    if index_type == "ivf_sq8":
        nprobe = min(int(index_params["nlist"]), math.ceil(int(index_params["nprobe"]) * boost))
        params = ivf_params(nprobe)
    elif index_type == "hnsw":
        wanted = int(index_params["efSearch"]) * max(1.0, k / CALIBRATION_K) * boost
        ef = max(k, min(max(EF_LADDER), math.ceil(wanted)))
        params = hnsw_params(ef)
    else:
        params = faiss.SearchParameters() if sel is not None else None
    if params is not None and sel is not None:
        params.sel = sel
    if index_type != "flat" and q.shape[0] <= SMALL_QUERY_BATCH:
        with one_omp_thread():
            scores, positions = index.search(q, k, params=params)
    else:
        scores, positions = index.search(q, k, params=params)
    del bitmap  # kept alive until the search returned: the selector only holds a raw pointer to it
    scores = scores.astype(np.float32, copy=False)
    positions = positions.astype(np.int64, copy=False)
    scores[positions < 0] = -np.inf
    if index_type == "ivf_sq8":
        scores, positions = rescore(vectors, q, positions)
    return scores, positions


def rescore(vectors: np.ndarray, q: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace ivf_sq8's 8-bit scores with scores on the stored float16 vectors and re-sort each row.

    SQ8 scores are off by ~1e-2 (a self-match can score 1.0005); after this every path of every index type
    reports the cosine of the stored vectors (within ~1e-3 of the original float32 cosine), so scores
    from the faiss, numpy and fallback paths can be compared and fused.
    """
    out_s = np.empty(positions.shape, dtype=np.float32)
    out_p = np.empty_like(positions)
    step = max(1, CHUNK_ROWS // max(1, positions.shape[1]))
    for start in range(0, positions.shape[0], step):
        pos = positions[start : start + step]
        valid = pos >= 0
        rows = np.asarray(vectors[np.where(valid, pos, 0)], dtype=np.float32)
        s = np.einsum("qkd,qd->qk", rows, q[start : start + step]).astype(np.float32)
        s[~valid] = -np.inf
        order = np.lexsort((pos, -s), axis=-1)
        out_s[start : start + step] = np.take_along_axis(s, order, axis=1)
        out_p[start : start + step] = np.take_along_axis(pos, order, axis=1)
    return out_s, out_p
