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

On disk (``save(dir)`` / ``DenseIndex.load(dir, mmap=True)``), plain files, no pickles::

    manifest.json   format name + format_version, kind (the index type), every build parameter, calibration, metadata
    ids.json        the ids, in position order
    vectors.npy     the normalised vectors as float16 (enough to ``rebuild`` without re-embedding)
    index.faiss     faiss's own index file (read with IO_FLAG_MMAP_IFC when mmap=True)

Process-wide faiss settings live in ``indexes.faiss_setup``; building and calibrating faiss indexes in
``indexes.dense_build``; a snapshot's several dense segments are searched together by ``indexes.dense_segments``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.atomic import atomic_dir
from indexes.dense_build import (
    CALIBRATION_K,
    CHUNK_ROWS,
    EF_LADDER,
    EXACT_BELOW,
    INDEX_TYPES,
    auto_index_type,
    build_faiss,
    check_params,
    hnsw_params,
    ivf_params,
    normalize_rows,
    topk,
    untyped,
)
from indexes.faiss_setup import SMALL_QUERY_BATCH, faiss, one_omp_thread

__all__ = ["EXACT_BELOW", "FORMAT_NAME", "FORMAT_VERSION", "INDEX_TYPES", "DenseIndex", "auto_index_type",
           "normalize_rows"]

FORMAT_NAME = "patent-match/dense-index"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
IDS_FILE = "ids.json"
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "index.faiss"
_EXTRA_KEYS = ("requested_kind", "exact_below", "unused_params", "build_seconds", "faiss_version", "calibration")


def _pad(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    q, have = positions.shape
    if have >= k:
        return scores[:, :k], positions[:, :k]
    out_s = np.full((q, k), -np.inf, dtype=np.float32)
    out_p = np.full((q, k), -1, dtype=np.int64)
    out_s[:, :have] = scores
    out_p[:, :have] = positions
    return out_s, out_p



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
            return _pad(np.empty((q.shape[0], 0), np.float32), np.empty((q.shape[0], 0), np.int64), k)
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
        return _pad(scores, positions, k)

    # ---------------------------------------------------------------------------------- persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to ``directory`` atomically and return its path.

        Through ``indexes.atomic.atomic_dir``: a reader never sees a half-written index. Refuses to replace a
        non-empty directory that is not a dense index.
        """
        target = Path(directory).absolute()
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            if not target.is_dir():
                raise ValueError(f"{target} exists and is not a directory")
            if any(target.iterdir()) and not (target / MANIFEST).is_file():
                raise ValueError(f"refusing to replace {target}: non-empty and not a dense index")
        with atomic_dir(target) as tmp:
            with open(tmp / IDS_FILE, "w", encoding="utf-8") as f:
                json.dump(self._ids, f, ensure_ascii=False)
            np.save(tmp / VECTORS_FILE, np.asarray(self._vectors, dtype=np.float16), allow_pickle=False)
            faiss.write_index(self._index, str(tmp / FAISS_FILE))
            with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
                json.dump(self._manifest(), f, ensure_ascii=False, indent=2, sort_keys=True)
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> DenseIndex:
        """Open an index written by ``save``.

        ``mmap=True`` memory-maps ``vectors.npy`` (read-only) and opens the faiss file with
        ``IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY``, so the vectors/codes are paged in on demand (HNSW's graph
        links are still read into memory). Raises ValueError on a missing/foreign manifest, a
        ``format_version`` this code does not read, or files inconsistent with the manifest.
        """
        root = Path(directory)
        path = root / MANIFEST
        if not path.is_file():
            raise ValueError(f"{root} is not a dense index: no {MANIFEST}")
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ValueError(f"{path} is not a {FORMAT_NAME} manifest")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{root}: dense index format_version {version!r}, this code reads version {FORMAT_VERSION}: "
                "rebuild the index (or use the matching patent-match version)"
            )
        index_type = manifest.get("kind")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"{path}: unknown index type {index_type!r}")
        with open(root / IDS_FILE, encoding="utf-8") as f:
            ids = json.load(f)
        vectors = np.load(root / VECTORS_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
        flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        index = faiss.read_index(str(root / FAISS_FILE), flags)
        n, dim = int(manifest["count"]), int(manifest["dim"])
        if (
            not isinstance(ids, list)
            or len(ids) != n
            or vectors.shape != (n, dim)
            or vectors.dtype != np.float16
            or index.ntotal != n
            or index.d != dim
        ):
            raise ValueError(
                f"{root}: files disagree with the manifest (count {n}, dim {dim}): {len(ids)} ids, vectors "
                f"{vectors.shape} {vectors.dtype}, faiss index {index.ntotal} x {index.d}"
            )
        extra = {key: manifest[key] for key in _EXTRA_KEYS if key in manifest}
        return cls(
            ids=ids,
            vectors=vectors,
            index=index,
            index_type=index_type,
            params=dict(manifest["params"]),
            manifest_extra=extra,
            metadata=manifest.get("metadata", {}),
        )

    # ----------------------------------------------------------------------------------------- internals

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": self._index_type,
            "metric": "inner_product",
            "normalized": True,
            "count": len(self._ids),
            "dim": self.dim,
            "params": self._params,
            "metadata": self._metadata,
            "files": {"ids": IDS_FILE, "vectors": VECTORS_FILE, "faiss": FAISS_FILE},
            "vectors_dtype": "float16",
            **self._extra,
        }

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
        """Exact numpy search over ``positions`` (None = all), blockwise: (scores, positions), unpadded."""
        total = len(self._ids) if positions is None else positions.size
        cand_s: list[np.ndarray] = []
        cand_p: list[np.ndarray] = []
        for start in range(0, total, CHUNK_ROWS):
            s, cols = topk(q @ self._rows(start, start + CHUNK_ROWS, positions).T, k)
            cols = cols + start
            cand_s.append(s)
            cand_p.append(cols if positions is None else positions[cols])
        s_all, p_all = np.concatenate(cand_s, axis=1), np.concatenate(cand_p, axis=1)
        scores, cols = topk(s_all, k)
        return scores.astype(np.float32), np.take_along_axis(p_all, cols, axis=1).astype(np.int64)

    def _faiss_search(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, fraction: float, widen: float = 1.0
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
        if self._index_type == "ivf_sq8":
            nprobe = min(int(self._params["nlist"]), math.ceil(int(self._params["nprobe"]) * boost))
            params = ivf_params(nprobe)
        elif self._index_type == "hnsw":
            wanted = int(self._params["efSearch"]) * max(1.0, k / CALIBRATION_K) * boost
            ef = max(k, min(max(EF_LADDER), math.ceil(wanted)))
            params = hnsw_params(ef)
        else:
            params = faiss.SearchParameters() if sel is not None else None
        if params is not None and sel is not None:
            params.sel = sel
        if self._index_type != "flat" and q.shape[0] <= SMALL_QUERY_BATCH:
            with one_omp_thread():
                scores, positions = self._index.search(q, k, params=params)
        else:
            scores, positions = self._index.search(q, k, params=params)
        del bitmap  # kept alive until the search returned: the selector only holds a raw pointer to it
        scores = scores.astype(np.float32, copy=False)
        positions = positions.astype(np.int64, copy=False)
        scores[positions < 0] = -np.inf
        if self._index_type == "ivf_sq8":
            scores, positions = self._rescore(q, positions)
        return scores, positions

    def _rescore(self, q: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            rows = np.asarray(self._vectors[np.where(valid, pos, 0)], dtype=np.float32)
            s = np.einsum("qkd,qd->qk", rows, q[start : start + step]).astype(np.float32)
            s[~valid] = -np.inf
            order = np.lexsort((pos, -s), axis=-1)
            out_s[start : start + step] = np.take_along_axis(s, order, axis=1)
            out_p[start : start + step] = np.take_along_axis(pos, order, axis=1)
        return out_s, out_p

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
