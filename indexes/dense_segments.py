"""Several immutable dense indexes (a snapshot's segments) searched as one, with live masks.

Positions run across the segments in order (segment i holds ``offsets[i]:offsets[i + 1]``). A search asks each
segment for its own top k among its allowed live positions and merges the lists by score (ties: the lower
position), so with exact (flat) segments the result is the exact top k of all live vectors, as one index of them
would give. A one-segment snapshot without deletions searches its index directly: no overhead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from indexes.dense import DenseIndex
from indexes.dense_search import pad


class SegmentRows:
    """Per-segment float16 row blocks (a dense part's stored vectors, or a segment's title vectors) indexed by
    global position, as one array would be (a copy only when asked for all)."""

    def __init__(self, blocks: Sequence[np.ndarray], offsets: np.ndarray | None = None) -> None:
        if not blocks:
            raise ValueError("no row blocks")
        self._blocks = blocks
        if offsets is None:
            offsets = np.concatenate(([0], np.cumsum([len(b) for b in blocks]))).astype(np.int64)
        self._offsets = offsets
        self.shape = (int(offsets[-1]), int(blocks[0].shape[1]))
        self.dtype = np.dtype(np.float16)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions: Any) -> np.ndarray:
        if isinstance(positions, slice) or positions is Ellipsis:
            return np.asarray(self)[positions]
        pos = np.asarray(positions, dtype=np.int64)
        flat = pos.reshape(-1)
        out = np.empty((flat.size, self.shape[1]), dtype=np.float16)
        seg = np.searchsorted(self._offsets, flat, side="right") - 1
        for i, block in enumerate(self._blocks):
            rows = np.flatnonzero(seg == i)
            if rows.size:
                out[rows] = block[flat[rows] - self._offsets[i]]
        return out.reshape(*pos.shape, self.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        full = np.concatenate([np.asarray(b) for b in self._blocks])
        return full if dtype is None else full.astype(dtype)


class SegmentedDense:
    """Dense search over ``parts`` with optional live masks (False = deleted), same calls as ``DenseIndex``."""

    def __init__(self, parts: Sequence[DenseIndex], live: Sequence[np.ndarray | None] | None = None) -> None:
        if not parts:
            raise ValueError("no dense segments")
        self.parts = list(parts)
        self.live = list(live) if live is not None else [None] * len(self.parts)
        meta = self.parts[0].metadata
        for p in self.parts[1:]:
            if p.metadata.get("fingerprint") != meta.get("fingerprint") or p.dim != self.parts[0].dim:
                raise ValueError("dense segments embedded by different models cannot be searched together")
        sizes = [len(p) for p in self.parts]
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self._single = len(self.parts) == 1 and self.live[0] is None
        self.vectors = self.parts[0].vectors if self._single \
            else SegmentRows([p.vectors for p in self.parts], self.offsets)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        return self.parts[0].dim

    @property
    def metadata(self) -> dict[str, Any]:
        return self.parts[0].metadata

    @property
    def manifest(self) -> dict[str, Any]:
        """The largest segment's manifest (its index type and parameters), plus the segment count."""
        biggest = max(self.parts, key=len)
        return {**biggest.manifest, "segments": len(self.parts), "count": len(self)}

    @property
    def index_type(self) -> str:
        return max(self.parts, key=len).index_type

    @property
    def ids(self) -> list[str]:
        return [i for p in self.parts for i in p.ids]

    def search_positions(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores float32 (q, k), global positions int64 (q, k)) over allowed live positions; slots
        beyond the available results hold -1 and -inf, as ``DenseIndex.search_positions``."""
        if self._single:
            return self.parts[0].search_positions(queries, k, allowed)
        if allowed is not None and (allowed.dtype != np.bool_ or allowed.shape != (len(self),)):
            raise ValueError(f"allowed has shape {allowed.shape}, expected ({len(self)},)")
        q = np.asarray(queries)
        n_q = 1 if q.ndim == 1 else q.shape[0]
        scores: list[np.ndarray] = []
        positions: list[np.ndarray] = []
        for i, part in enumerate(self.parts):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            mask = self.live[i]
            if allowed is not None:
                mask = allowed[lo:hi] if mask is None else mask & allowed[lo:hi]
            if mask is not None and not mask.any():
                continue
            s, p = part.search_positions(queries, k, None if mask is None or mask.all() else np.ascontiguousarray(mask))
            scores.append(s)
            positions.append(np.where(p >= 0, p + lo, -1))
        if not scores:
            return pad(np.empty((n_q, 0), np.float32), np.empty((n_q, 0), np.int64), k)
        s_all, p_all = np.concatenate(scores, axis=1), np.concatenate(positions, axis=1)
        big = np.iinfo(np.int64).max
        order = np.lexsort((np.where(p_all >= 0, p_all, big), -s_all), axis=-1)[:, :k]
        return pad(np.take_along_axis(s_all, order, axis=1), np.take_along_axis(p_all, order, axis=1), k)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
        scores, positions = self.search_positions(queries, k, allowed)
        ids = self.ids
        return [[(ids[p], float(s)) for s, p in zip(srow, prow, strict=True) if p >= 0]
                for srow, prow in zip(scores.tolist(), positions.tolist(), strict=True)]


def merge_dense(parts: Sequence[tuple[DenseIndex, np.ndarray | None]], index_type: str = "auto",
                queries: np.ndarray | None = None) -> DenseIndex:
    """One index of the live vectors of ``parts`` (index, live mask or None), in order. Flat and HNSW segments
    give their float32 vectors back exactly; ivf_sq8 ones their stored float16 copy (cosines within ~1e-3)."""
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for index, live in parts:
        keep = np.arange(len(index)) if live is None else np.flatnonzero(live)
        all_ids = index.ids
        ids.extend(all_ids[i] for i in keep)
        blocks.append(index.float32_rows(keep))
    return DenseIndex.build(ids, np.concatenate(blocks), index_type=index_type, metadata=parts[0][0].metadata,
                            queries=queries)
