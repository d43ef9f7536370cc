"""Dense vector index: ids + vectors in, ranked ids out (cosine similarity).

``DenseIndex`` wraps one faiss index over L2-normalised vectors searched by inner product, so scores are
cosine similarities. It knows nothing of patents: the caller embeds texts and passes string ids, an optional
boolean ``allowed`` mask over index positions (filters computed by the caller) and free-form ``metadata``
(e.g. the embedding model's name and fingerprint), which is stored verbatim.

Kinds (see ``DenseIndex.build`` for why ``"auto"`` picks what it picks):

* ``"flat"``: exact search (``IndexFlatIP``).
* ``"ivf_sq8"``: inverted file with 8-bit scalar quantisation (``IndexIVFScalarQuantizer``); ``nlist`` from
  the collection size, ``nprobe`` calibrated at build time to reach a recall@10 target. The candidates it
  returns are re-scored (and re-sorted) on the stored float16 vectors, so its scores are true cosines to
  ~1e-3 rather than 8-bit approximations.
* ``"hnsw"``: graph index (``IndexHNSWFlat``); ``M``/``efConstruction`` fixed, ``efSearch`` calibrated.

The files on disk are ``indexes.dense_files``; the search paths ``indexes.dense_search``. Process-wide faiss
settings live in ``indexes.faiss_setup``; building and calibrating faiss indexes in ``indexes.dense_build``; a
snapshot's several dense segments are searched together by ``indexes.dense_segments``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.dense_build import (
    EXACT_BELOW,
    INDEX_TYPES,
    auto_index_type,
    build_faiss,
    check_params,
    normalize_rows,
    untyped,
)
from indexes.dense_files import index_manifest, read_files, write_files
from indexes.dense_search import exact_search, faiss_search, pad
from indexes.faiss_setup import faiss

__all__ = ["EXACT_BELOW", "INDEX_TYPES", "DenseIndex", "auto_index_type", "normalize_rows"]


# ------------------------------------------------------------------------------------------------ index


class DenseIndex:
    """An immutable cosine-similarity index over ``len(ids)`` vectors. Build with ``DenseIndex.build``.

    Search results are ``list[list[tuple[id, score]]]`` (one list per query, best first), or padded arrays
    from ``search_positions``. Instances are safe to search from several threads (search-time parameters are
    passed per call, the index is never mutated).

    Two class attributes steer filtered search (override per instance if needed): with an ``allowed`` mask
    leaving at most ``exact_allowed_max`` positions, or at most ``exact_allowed_fraction`` of the index, the
    allowed vectors are searched exactly with numpy (faster than a faiss selector scan at that size, and
    exact); otherwise faiss searches with an ``IDSelectorBitmap``.
    """

    exact_allowed_max: int = 4096
    exact_allowed_fraction: float = 0.02

    def __init__(
        self,
        *,
        ids: list[str],
        vectors: np.ndarray,
        index: faiss.Index,
        index_type: str,
        params: dict[str, Any],
        manifest_extra: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        """Internal: use ``DenseIndex.build`` or ``DenseIndex.load``."""
        self._ids = ids
        self._vectors = vectors  # (n, dim) float16, normalised; possibly a read-only memmap
        self._index = index
        self._index_type = index_type
        self._params = params
        self._extra = manifest_extra
        self._metadata = metadata
        self._positions: dict[str, int] | None = None
        self._f32 = self._float32_view()

    # -------------------------------------------------------------------------------- construction

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        vectors: np.ndarray,
        *,
        index_type: str = "auto",
        exact_below: int = EXACT_BELOW,
        params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        queries: np.ndarray | None = None,
    ) -> DenseIndex:
        """Build an index over ``vectors`` (n, dim), row i belonging to ``ids[i]``.

        Vectors are L2-normalised here (whatever the caller did), so scores are cosine similarities.
        Raises ValueError on empty input, a shape/length mismatch, NaN/inf, all-zero rows, duplicate or
        non-string ids, an unknown index type or parameter, or metadata that is not JSON-serialisable.

        ``index_type``: ``"flat"``, ``"ivf_sq8"``, ``"hnsw"``, or ``"auto"`` = flat below ``exact_below`` vectors,
        else ivf_sq8. Why (faiss 1.15, 1M x 384, 2 cores, from shared/notes/infrastructure.md):

        =============  =======  ========  ======================  ===============
        index          build    memory    1 query / batch-64 ea.  recall@100
        =============  =======  ========  ======================  ===============
        Flat           0.8 s    1,465 MB  74 ms / 6.9 ms (BLAS)   1.0
        IVF2048+SQ8    25 s     377 MB    6.9 ms / 3.4 ms         0.966 (np 128)
        HNSW M32 ef40  243 s    1,724 MB  2.9-5.4 ms / 1.5 ms     0.92-0.96
        =============  =======  ========  ======================  ===============

        At 1M, IVF+SQ8 is ~4x smaller than flat or HNSW and builds ~10x faster than HNSW for about 10x the
        single-query speed of flat; HNSW is faster per query but is the biggest and slowest to build. Below
        ~100k vectors flat is exact, builds instantly, takes <= 150 MB at 384 dims and answers a query in a few
        ms, so approximation buys nothing.

        ``params`` (unknown keys are rejected; None means the default shown):

        * ivf_sq8: ``nlist`` (None: ~4 sqrt(n), at most n // 39), ``nprobe`` (None: calibrated),
          ``train_size`` (None: min(n, max(64 nlist, 10000)) sampled rows), ``recall_target`` (0.97),
          ``calibration_queries`` (256), ``seed`` (0).
        * hnsw: ``M`` (32), ``efConstruction`` (40), ``efSearch`` (None: calibrated), ``recall_target``,
          ``calibration_queries``, ``seed``.

        Calibration: the smallest nprobe / efSearch on a ladder whose recall@10 against exact search reaches
        ``recall_target`` is kept; the measured figures go into the manifest (``calibration``). The queries
        are ``queries`` when given (vectors like the ones the index will be searched with, e.g. demand
        vectors for a patent index; up to ``calibration_queries`` of them are sampled), else
        ``calibration_queries`` indexed vectors, each one's own position dropped from both result lists.
        Give ``queries`` when you have them: self-queries sit inside the data's clusters and can promise
        far more than real queries get (1M synthetic patents, bench/scale.py: self-queries chose nprobe 4,
        at which real demand vectors had recall@10 0.78; on 3,000 real Chinese patent titles the two
        agreed within 0.01). The default target, 0.97, leaves a margin over the 0.95 wanted for the noise
        of a 256-query estimate; pass nprobe/efSearch to choose yourself. If no setting reaches the target
        (e.g. SQ8 rounding on structureless data), the last one (nprobe = nlist, a full scan) is kept and
        ``reached`` is false.
        HNSW searches with ``efSearch * max(1, k / 10)`` so a larger k keeps the calibrated ef/k ratio; IVF
        keeps nprobe for any k. With a filter both are raised further (see ``search``).

        The resolved index type, every parameter, and ``metadata`` (verbatim) are recorded in the manifest.
        """
        id_list = cls._check_ids(ids)
        x = normalize_rows(vectors)
        if x.shape[0] != len(id_list):
            raise ValueError(f"{len(id_list)} ids but {x.shape[0]} vectors")
        meta = cls._check_metadata(metadata)
        if isinstance(exact_below, bool) or not isinstance(exact_below, int) or exact_below < 0:
            raise ValueError(f"exact_below must be a non-negative integer, got {exact_below!r}")
        requested = index_type
        extra: dict[str, Any] = {"requested_kind": requested, "exact_below": exact_below}
        if index_type == "auto":
            # params given with "auto" are for its approximate index type: checked always, unused (and recorded
            # as such) when the collection is small enough for flat.
            checked = check_params("ivf_sq8", params)
            index_type = auto_index_type(x.shape[0], exact_below)
            if index_type == "flat":
                checked = check_params("flat", None)
                if params:
                    extra["unused_params"] = dict(params)
        elif index_type in INDEX_TYPES:
            checked = check_params(index_type, params)
        else:
            raise ValueError(f"unknown index type {index_type!r}: expected one of {', '.join(('auto', *INDEX_TYPES))}")
        t0 = time.perf_counter()
        q = None
        if queries is not None:
            q = np.asarray(queries, dtype=np.float32)
            if q.ndim != 2 or q.shape[1] != x.shape[1]:
                raise ValueError(f"calibration queries must be (m, {x.shape[1]}), got {q.shape}")
            q = normalize_rows(q, "calibration queries") if q.shape[0] else None
        index, resolved, calibration = build_faiss(index_type, x, checked, q)
        extra["build_seconds"] = round(time.perf_counter() - t0, 3)
        extra["faiss_version"] = faiss.__version__
        if calibration is not None:
            extra["calibration"] = calibration
        return cls(
            ids=id_list,
            vectors=x.astype(np.float16),
            index=index,
            index_type=index_type,
            params=resolved,
            manifest_extra=extra,
            metadata=meta,
        )

    def rebuild(self, index_type: str | None = None, params: dict[str, Any] | None = None) -> DenseIndex:
        """A new index over the stored (float16) vectors, same ids and metadata; the original is untouched.

        ``index_type`` None keeps the current index type, ``"auto"`` re-applies the ``exact_below`` rule recorded at
        build. ``params`` None uses that index type's defaults (nprobe/efSearch recalibrated). Scores can differ
        from the original index by ~1e-3 since the vectors went through float16.
        """
        return DenseIndex.build(
            self._ids,
            np.asarray(self._vectors, dtype=np.float32),
            index_type=index_type or self._index_type,
            exact_below=int(self._extra.get("exact_below", 100_000)),
            params=params,
            metadata=self.metadata,
        )

    # ------------------------------------------------------------------------------------- accessors

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"DenseIndex(index_type={self._index_type!r}, n={len(self)}, dim={self.dim}, params={self._params})"

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    @property
    def index_type(self) -> str:
        """The resolved index_type: ``"flat"``, ``"ivf_sq8"`` or ``"hnsw"`` (never ``"auto"``)."""
        return self._index_type

    @property
    def params(self) -> dict[str, Any]:
        """Every build/search parameter of the index_type, resolved (a copy)."""
        return dict(self._params)

    @property
    def metadata(self) -> dict[str, Any]:
        """The caller's metadata as stored in the manifest (a deep copy)."""
        return json.loads(json.dumps(self._metadata))

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest ``save`` writes (a copy)."""
        return json.loads(json.dumps(self._manifest()))

    @property
    def ids(self) -> list[str]:
        """The ids in position order (a copy)."""
        return list(self._ids)

    @property
    def vectors(self) -> np.ndarray:
        """The stored normalised vectors, float16, (n, dim), read-only."""
        view = self._vectors.view()
        view.flags.writeable = False
        return view

    def float32_rows(self, positions: np.ndarray) -> np.ndarray:
        """float32 vectors at ``positions``: faiss's exact copy for flat and hnsw, the float16 one for ivf_sq8."""
        pos = np.asarray(positions, dtype=np.int64)
        return self._rows(0, pos.size, pos)

    def id_at(self, pos: int) -> str:
        """The id at index position ``pos`` (IndexError if out of range; negative positions are refused)."""
        if isinstance(pos, bool) or not isinstance(pos, int | np.integer) or not 0 <= pos < len(self._ids):
            raise IndexError(f"position {pos!r} out of range for an index of {len(self._ids)}")
        return self._ids[int(pos)]

    def positions_of(self, ids: Iterable[str]) -> np.ndarray:
        """Index positions (int64) of ``ids``, in order. KeyError naming the unknown ids if any is absent.

        Handy for building an ``allowed`` mask: ``mask = np.zeros(len(index), bool);
        mask[index.positions_of(ok_ids)] = True``.
        """
        if self._positions is None:
            self._positions = {id_: pos for pos, id_ in enumerate(self._ids)}
        lookup = self._positions
        wanted = [ids] if isinstance(ids, str) else list(ids)
        missing = [i for i in wanted if i not in lookup]
        if missing:
            raise KeyError(f"{len(missing)} unknown id(s), e.g. {missing[:5]!r}")
        return np.fromiter((lookup[i] for i in wanted), dtype=np.int64, count=len(wanted))

    # ---------------------------------------------------------------------------------------- search

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
        """Top-``k`` ``(id, cosine score)`` per query, best first.

        ``queries``: (q, dim) or a single (dim,) vector (normalised here). ``allowed``: optional boolean
        mask of length ``len(self)``; only allowed positions are returned. Each query gets
        ``min(k, len(self))`` results, or with a mask ``min(k, allowed.sum())``: when an approximate search
        (or a restrictive filter) comes back short, that query is redone exactly over the allowed vectors.

        Filtered search: a mask leaving at most ``exact_allowed_max`` (4096) positions or
        ``exact_allowed_fraction`` (2%) of the index is searched exactly with numpy over the allowed vectors;
        a larger one goes to faiss with an ``IDSelectorBitmap``, nprobe / efSearch divided by the allowed
        fraction so about as many allowed candidates are visited as in an unfiltered search.

        Scores: flat and hnsw report float32 cosines of the normalised input vectors; ivf_sq8 reports
        cosines against the stored float16 vectors (within ~1e-3), whichever path answered.
        """
        scores, positions = self.search_positions(queries, k, allowed)
        ids = self._ids
        return [
            [(ids[p], float(s)) for s, p in zip(srow, prow, strict=True) if p >= 0]
            for srow, prow in zip(scores.tolist(), positions.tolist(), strict=True)
        ]

    def search_positions(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like ``search`` but returns arrays ``(scores float32 (q, k), positions int64 (q, k))``.

        Rows are best first; slots beyond the available results hold position -1 and score -inf.
        """
        q = self._check_queries(queries)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        n = len(self._ids)
        subset: np.ndarray | None = None  # allowed positions, None when all are allowed
        if allowed is not None:
            mask = self._check_mask(allowed)
            subset = np.flatnonzero(mask)
            if subset.size == n:
                subset = None
        want = min(k, n if subset is None else subset.size)
        if want == 0:
            return pad(np.empty((q.shape[0], 0), np.float32), np.empty((q.shape[0], 0), np.int64), k)
        if subset is None:
            scores, positions = self._faiss_search(q, want, None, 1.0)
        elif subset.size <= max(self.exact_allowed_max, self.exact_allowed_fraction * n):
            scores, positions = self._exact_search(q, want, subset)
        else:
            scores, positions = self._faiss_search(q, want, mask, subset.size / n)
        short = np.flatnonzero((positions >= 0).sum(axis=1) < want)
        if short.size and self._index_type != "flat" and subset is not None:
            # A filter that follows the data (a language mask: English documents sit in clusters of their own) is
            # not spread evenly over IVF lists / the HNSW graph, so the lists nearest a Chinese query hold few
            # English documents and the search comes back short. Widen it before paying for the exact fallback,
            # which converts every allowed float16 vector (measured at 1M, demand queries, per-language search:
            # 34% of searches short at nprobe 4, ~300 ms each; widening x8 then x64 leaves none).
            for widen in (8.0, 64.0):
                s2, p2 = self._faiss_search(q[short], want, mask, subset.size / n, widen)
                scores[short], positions[short] = s2, p2
                short = short[(p2 >= 0).sum(axis=1) < want]
                if not short.size:
                    break
        if short.size:  # approximate search came back short: redo those queries exactly
            scores[short], positions[short] = self._exact_search(q[short], want, subset)
        return pad(scores, positions, k)

    # ---------------------------------------------------------------------------------- persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to ``directory`` atomically and return its path (``indexes.dense_files``)."""
        return write_files(directory, self._ids, self._vectors, self._index, self._manifest())

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> DenseIndex:
        """Open an index written by ``save`` (``indexes.dense_files.read_files``: ``mmap``, checks)."""
        return cls(**read_files(directory, mmap))

    # ----------------------------------------------------------------------------------------- internals

    def _manifest(self) -> dict[str, Any]:
        return index_manifest(self._index_type, len(self._ids), self.dim, self._params, self._metadata, self._extra)

    def _float32_view(self) -> np.ndarray | None:
        """Zero-copy read-only view of the float32 vectors faiss holds (flat, hnsw), else None (ivf_sq8)."""
        if self._index_type == "flat":
            flat = faiss.downcast_index(self._index)
        elif self._index_type == "hnsw":
            flat = faiss.downcast_index(untyped(faiss.downcast_index(self._index)).storage)
        else:
            return None
        view = faiss.rev_swig_ptr(untyped(flat).get_xb(), len(self._ids) * self.dim).reshape(len(self._ids), self.dim)
        view.flags.writeable = False
        return view

    def _rows(self, start: int, stop: int, positions: np.ndarray | None) -> np.ndarray:
        """float32 vectors of positions[start:stop] (or rows start:stop): faiss's exact copy when it has one."""
        source = self._f32 if self._f32 is not None else self._vectors
        block = source[start:stop] if positions is None else source[positions[start:stop]]
        return np.asarray(block, dtype=np.float32)


    def _exact_search(self, q: np.ndarray, k: int, positions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return exact_search(self._rows, len(self._ids), q, k, positions)

    def _faiss_search(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, fraction: float, widen: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        return faiss_search(self._index, self._index_type, self._params, self._vectors, q, k, mask, fraction, widen)

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        if isinstance(queries, np.ndarray) and queries.ndim == 1:
            queries = queries[None, :]
        q = normalize_rows(queries, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dim {q.shape[1]}, the index has dim {self.dim}")
        return q

    def _check_mask(self, allowed: np.ndarray) -> np.ndarray:
        if not isinstance(allowed, np.ndarray) or allowed.dtype != np.bool_:
            raise ValueError("allowed must be a numpy boolean mask over index positions")
        if allowed.shape != (len(self._ids),):
            raise ValueError(f"allowed has shape {allowed.shape}, expected ({len(self._ids)},)")
        return np.ascontiguousarray(allowed)

    @staticmethod
    def _check_ids(ids: Sequence[str]) -> list[str]:
        if isinstance(ids, str | bytes):
            raise ValueError("ids must be a sequence of strings, not a single string")
        id_list = list(ids)
        if not id_list:
            raise ValueError("no ids: cannot build an empty index")
        bad = next((i for i, v in enumerate(id_list) if not isinstance(v, str) or not v), None)
        if bad is not None:
            raise ValueError(f"ids[{bad}] is {id_list[bad]!r}: ids must be non-empty strings")
        if len(set(id_list)) != len(id_list):
            seen: set[str] = set()
            dups = [v for v in id_list if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
            raise ValueError(f"{len(dups)} duplicate id(s), e.g. {sorted(set(dups))[:5]!r}")
        return id_list

    @staticmethod
    def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
        if metadata is None:
            return {}
        if not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
        try:
            return json.loads(json.dumps(metadata, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc
