"""One BM25 segment: the term counts of an immutable run of documents (no collection statistics), built from
``indexes.term_counts``, merged without tokenizing again, and saved and loaded as plain files. Scoring over
segments is ``indexes.bm25``.

On disk, a segment (a folder, written atomically): ``manifest.json`` (format version, analyzer settings, document
count), ``ids.json`` (position -> id), ``terms.json`` (column -> term) and plain ``.npy`` arrays (``lengths``,
``indptr``/``docs``/``tf`` by term, ``doc_ptr``/``doc_terms`` by document); ``load(dir, mmap=True)`` memory-maps
the arrays. An id lookup beside them (``ids.utf8``, ``ids.offsets.npy``, ``ids.order.npy``) lets
``find_positions`` find a few ids without reading them all; a segment saved before it existed has none.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig
from indexes.atomic import atomic_dir
from indexes.term_counts import TermCounts, count_corpus, tokenizing_workers

FORMAT_VERSION = 2
SEGMENT_FORMAT = "patent-match/bm25-segment"
_ARRAYS = ("lengths", "indptr", "docs", "tf", "doc_ptr", "doc_terms")


def _to_csc(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n_rows: int, n_cols: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices int32, indptr int64, data) of the CSC matrix; ``rows`` must be ascending, and stay so per column."""
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy comes with sentence-transformers
        order = np.argsort(cols, kind="stable")
        indptr = np.zeros(n_cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_cols), out=indptr[1:])
        return rows[order].astype(np.int32), indptr, data[order]
    row_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=row_ptr[1:])
    csr = sp.csr_matrix((data, cols, row_ptr), shape=(n_rows, n_cols), copy=False)
    csc = csr.tocsc()  # counting sort in C++; row order within a column is kept
    return csc.indices.astype(np.int32, copy=False), csc.indptr.astype(np.int64, copy=False), csc.data


def check_ids(ids: Sequence[str], n: int) -> list[str]:
    id_list = list(ids)
    if len(id_list) != n:
        raise ValueError(f"{len(id_list)} ids but {n} documents")
    if not id_list:
        raise ValueError("cannot build a BM25 index over no documents")
    if len(set(id_list)) != len(id_list):
        raise ValueError("document ids must be unique")
    return id_list


def row_ranges(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ptr[r]:ptr[r + 1] of ``rows`` (int64)."""
    starts = np.asarray(ptr[rows], dtype=np.int64)
    lens = np.asarray(ptr[rows + 1], dtype=np.int64) - starts
    if not lens.sum():
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    return np.arange(int(lens.sum()), dtype=np.int64) + shift


class BM25Segment:
    """Term counts of one immutable run of documents: no collection statistics in it, so it never changes."""

    def __init__(self, ids: list[str], terms: list[str] | Path, arrays: dict[str, np.ndarray],
                 manifest: dict[str, Any]) -> None:
        self.ids = ids
        self._terms = terms  # or the terms.json to read when first needed (a flush never needs the vocabulary)
        self._vocab: dict[str, int] | None = None
        self.lengths = arrays["lengths"]  # int64 (n,): terms per document, with repeats
        self.indptr = np.asarray(arrays["indptr"], dtype=np.int64)  # (V + 1,): postings of term t at [t], [t + 1]
        self.docs = arrays["docs"]  # int32 (postings,): document, ascending within a term
        self.tf = arrays["tf"]  # int32 (postings,): the term's count in the document
        self.doc_ptr = arrays["doc_ptr"]  # int64 (n + 1,): the distinct terms of document d at [d], [d + 1]
        self.doc_terms = arrays["doc_terms"]  # int32: term ids, by document
        self.manifest = manifest
        self.analyzer_config = AnalyzerConfig.from_dict(manifest["analyzer"])
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def positions(self) -> dict[str, int]:
        """Id -> position in this segment, made when first asked (a segment never changes, so every snapshot
        that holds it reuses the one map)."""
        if self._positions is None:
            self._positions = {doc_id: pos for pos, doc_id in enumerate(self.ids)}
        return self._positions

    @property
    def terms(self) -> list[str]:
        """Column -> term."""
        if isinstance(self._terms, Path):
            self._terms = json.loads(self._terms.read_text("utf-8"))
        return self._terms

    @property
    def vocab(self) -> dict[str, int]:
        """Term -> column."""
        if self._vocab is None:
            self._vocab = {t: i for i, t in enumerate(self.terms)}
        return self._vocab

    @property
    def n_terms(self) -> int:
        return int(self.indptr.size - 1)

    @property
    def df(self) -> np.ndarray:
        return np.diff(self.indptr)

    @classmethod
    def from_counts(cls, ids: Sequence[str], counts: Iterable[TermCounts], analyzer: AnalyzerConfig,
                    progress: Callable[[int], None] | None = None, workers: int = 1) -> BM25Segment:
        started = time.time()
        vocab: dict[str, int] = {}
        docs: list[np.ndarray] = []
        terms: list[np.ndarray] = []
        tfs: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        offset = 0
        for chunk in counts:
            remap = np.fromiter((vocab.setdefault(t, len(vocab)) for t in chunk.vocab), dtype=np.int32,
                                count=len(chunk.vocab))
            docs.append(chunk.docs + np.int32(offset))
            terms.append(remap[chunk.terms] if chunk.terms.size else chunk.terms)
            tfs.append(chunk.tf)
            lengths.append(chunk.lengths)
            offset += chunk.lengths.size
            if progress is not None:
                progress(offset)
        id_list = check_ids(ids, offset)
        doc_of = np.concatenate(docs) if docs else np.zeros(0, np.int32)
        term_of = np.concatenate(terms) if terms else np.zeros(0, np.int32)
        tf_of = np.concatenate(tfs) if tfs else np.zeros(0, np.int32)
        del docs, terms, tfs
        n = len(id_list)
        doc_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(doc_of, minlength=n), out=doc_ptr[1:])
        indices, indptr, tf = _to_csc(doc_of, term_of, tf_of, n, max(len(vocab), 1))
        if not vocab:  # an all-empty corpus: one empty column, as before
            indptr = np.zeros(2, dtype=np.int64)
        arrays = {"lengths": np.concatenate(lengths).astype(np.int64), "indptr": indptr, "docs": indices,
                  "tf": tf.astype(np.int32, copy=False), "doc_ptr": doc_ptr, "doc_terms": term_of.astype(np.int32)}
        manifest = {
            "format": SEGMENT_FORMAT, "format_version": FORMAT_VERSION, "analyzer": analyzer.to_dict(),
            "doc_count": n, "vocab_size": len(vocab), "postings": int(indices.size),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.time() - started, 3), "build_workers": workers,
        }
        return cls(id_list, list(vocab) or [""], arrays, manifest)

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], analyzer: AnalyzerConfig | None = None,
              progress: Callable[[int], None] | None = None, workers: int | None = None) -> BM25Segment:
        """Tokenize ``texts`` with the analyzer and count their terms under ``ids`` (unique, same length)."""
        config = analyzer or AnalyzerConfig()
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        check_ids(ids, len(texts))
        used = tokenizing_workers(len(texts), workers)
        return cls.from_counts(ids, count_corpus(texts, config, used), config, progress, used)

    @classmethod
    def merge(cls, parts: Sequence[tuple[BM25Segment, np.ndarray | None]]) -> BM25Segment:
        """One segment of the live documents of ``parts`` (segment, live mask or None), in order, without
        tokenizing again."""
        config = parts[0][0].manifest["analyzer"]
        if any(seg.manifest["analyzer"] != config for seg, _ in parts):
            raise ValueError("cannot merge segments made with different analyzers")
        ids: list[str] = []

        def chunks() -> Iterator[TermCounts]:
            import scipy.sparse as sp

            for seg, live in parts:
                keep = np.arange(len(seg)) if live is None else np.flatnonzero(live)
                ids.extend(seg.ids[i] for i in keep)
                csc = sp.csc_matrix((np.asarray(seg.tf), np.asarray(seg.docs), np.asarray(seg.indptr)),
                                    shape=(len(seg), seg.n_terms))
                rows = csc.tocsr()[keep]
                local = np.repeat(np.arange(keep.size, dtype=np.int32), np.diff(rows.indptr))
                yield TermCounts(seg.terms, np.asarray(seg.lengths[keep], dtype=np.int64), local,
                                 rows.indices.astype(np.int32), rows.data.astype(np.int32))

        counted = list(chunks())
        return cls.from_counts(ids, counted, AnalyzerConfig.from_dict(config))

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the segment to ``directory`` atomically: a reader sees the old folder or the new one."""
        target = Path(directory)
        with atomic_dir(target) as tmp:
            for name in _ARRAYS:
                np.save(tmp / f"{name}.npy", np.asarray(getattr(self, name)), allow_pickle=False)
            (tmp / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
            write_id_lookup(tmp, self.ids)
            (tmp / "terms.json").write_text(json.dumps(self.terms, ensure_ascii=False), encoding="utf-8")
            (tmp / "manifest.json").write_text(json.dumps(self.manifest, ensure_ascii=False, indent=2), "utf-8")
        return target

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> BM25Segment:
        path = Path(directory)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no BM25 index at {path} (manifest.json missing)")
        manifest = json.loads(manifest_path.read_text("utf-8"))
        if manifest.get("format") != SEGMENT_FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{manifest_path}: BM25 index format {manifest.get('format')!r} v{manifest.get('format_version')} "
                f"is not readable by this build (v{FORMAT_VERSION}); rebuild with `pmatch index build --full`"
            )
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
                  for name in _ARRAYS}
        ids = json.loads((path / "ids.json").read_text("utf-8"))
        terms = path / "terms.json"
        if len(ids) != manifest["doc_count"] or arrays["lengths"].shape != (len(ids),):
            raise ValueError(f"{path}: ids.json has {len(ids)} ids, manifest says {manifest['doc_count']}")
        return cls(ids, terms, arrays, manifest)


# --- finding a few ids without reading them all ------------------------------------------------------------
# Beside ids.json a segment keeps its ids as UTF-8 bytes (ids.utf8, with ids.offsets.npy) and the positions in
# byte order (ids.order.npy), all memory-mapped: a flush of a million records finds the positions of the few ids it
# changes by binary search, where parsing ids.json in a fresh process takes about a second.
ID_LOOKUP = ("ids.utf8", "ids.offsets.npy", "ids.order.npy")


def write_id_lookup(directory: Path, ids: list[str]) -> None:
    encoded = [doc_id.encode("utf-8") for doc_id in ids]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    (directory / "ids.utf8").write_bytes(b"".join(encoded))
    np.save(directory / "ids.offsets.npy", offsets, allow_pickle=False)
    order = np.asarray(sorted(range(len(encoded)), key=encoded.__getitem__), dtype=np.int64)
    np.save(directory / "ids.order.npy", order, allow_pickle=False)


def find_positions(directory: str | Path, wanted: set[str]) -> dict[str, int] | None:
    """Id -> position in the segment saved in ``directory``, for the ids of ``wanted`` it holds; None when the
    segment has no id lookup (saved before it existed: read its ids instead)."""
    path = Path(directory)
    if not all((path / name).is_file() for name in ID_LOOKUP):
        return None
    offsets = np.load(path / "ids.offsets.npy", mmap_mode="r")
    order = np.load(path / "ids.order.npy", mmap_mode="r")
    size = int(offsets.shape[0]) - 1
    if order.shape != (size,):
        raise ValueError(f"{path}: ids.order.npy holds {order.shape[0]} positions for {size} ids")
    if not wanted or not size:
        return {}
    blob = np.memmap(path / "ids.utf8", dtype=np.uint8, mode="r") if offsets[-1] else np.zeros(0, np.uint8)

    def id_at(rank: int) -> bytes:
        pos = int(order[rank])
        return blob[int(offsets[pos]):int(offsets[pos + 1])].tobytes()

    ranks = range(size)
    out: dict[str, int] = {}
    for doc_id in wanted:
        key = doc_id.encode("utf-8")
        rank = bisect.bisect_left(ranks, key, key=id_at)  # the first rank whose id is >= key
        if rank < size and id_at(rank) == key:
            out[doc_id] = int(order[rank])
    return out

