"""BM25+ keyword search over immutable segments of term counts, with collection statistics taken at query time.

Scoring is BM25+ (Lv & Zhai, 2011: the term-frequency part is lower-bounded by ``delta``), with rank-bm25's
``BM25Plus`` defaults (k1 = 1.5, b = 0.75, delta = 1). Two reasons: patents range from a 20-character title
to 10,000 characters of claims, and BM25+ stops long documents from being pushed below short ones that
match fewer terms; and rank-bm25 implements the same formula exactly, so the reference check (same top-10,
same scores) is exact rather than "close". BM25+ gives every document ``delta * idf`` for each query term
it lacks; that part is the same constant for every document, so ranking ignores it, and ``search`` reports
only the part earned by matching terms, ``idf(t) * (k1 + 1) tf / (k1 (1 - b + b dl / avgdl) + tf)``: a document
with no query term scores 0 and is never returned.

Segments. A ``BM25Segment`` holds what indexing a run of documents produced and nothing that depends on the
rest of the collection: per document its length, and per (term, document) the term's count, as a CSC matrix
(postings by term, documents ascending: queries) and a CSR one (terms by document: deletions). ``BM25Index``
reads one or more segments plus, per segment, an optional live mask (False = deleted or superseded) and
computes the collection statistics over live documents of all segments: N, each term's document frequency
(df, looked up per query term: a segment's df minus its deleted documents' share) and the average length.
Scores are computed per query from those statistics in float64, so an index of several segments with deletions
scores every live document exactly as one segment built from the live documents alone would (the same inputs
reach the same float operations in the same order: bit-identical per term; sums across terms follow query-term
order in both). That is what makes incremental writes equal a full rebuild; see ``matcher.snapshot``.

Why not bm25s (what this was built on until format 1) or tantivy: bm25s bakes idf and avgdl into its stored
score matrix, so a new document changes every stored score; tantivy has segments and deletes, but counts deleted
documents in df and N until a merge and quantises document lengths to one byte, so its scores cannot equal a
rebuild (and it is plain BM25, not BM25+). Measured side by side in ``bench/segments.py``.

On disk, a segment (a folder, written atomically): ``manifest.json`` (format version, analyzer settings, document
count), ``ids.json`` (position -> id), ``terms.json`` (column -> term) and plain ``.npy`` arrays (``lengths``,
``indptr``/``docs``/``tf`` by term, ``doc_ptr``/``doc_terms`` by document); ``load(dir, mmap=True)`` memory-maps
the arrays.

Building at scale: texts are tokenized in chunks, in worker processes when there are many (``workers``; default:
the CPUs available, env ``PMATCH_INDEX_WORKERS``), and each chunk comes back as (its vocabulary, and per document
the distinct term ids and their counts); the parent only re-numbers chunk vocabularies and concatenates arrays,
and the CSC matrix is made with scipy's CSR->CSC conversion (a counting sort).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig, get_analyzer
from indexes.atomic import atomic_dir
from indexes.settings import index_settings

FORMAT_VERSION = 2
SEGMENT_FORMAT = "patent-match/bm25-segment"
DEFAULT_PARAMS: dict[str, Any] = {"method": "bm25+", "k1": 1.5, "b": 0.75, "delta": 1.0}
CHUNK_DOCS = 2_000  # texts per tokenization task
PARALLEL_MIN_DOCS = 20_000  # below this, worker start-up (loading the analyzer: ~1 s) costs more than it saves
_POSTINGS_GROUP = 16_000_000  # postings summed per bincount at query time
_ARRAYS = ("lengths", "indptr", "docs", "tf", "doc_ptr", "doc_terms")


def default_workers() -> int:
    """Worker processes for tokenizing a big corpus: env ``PMATCH_INDEX_WORKERS``, else the CPUs available."""
    workers = index_settings().index_workers
    if workers:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class TermCounts:
    """Term counts of a run of documents: a local vocabulary, and per document its distinct terms and counts."""

    vocab: list[str]  # local term id -> term
    lengths: np.ndarray  # int64 (docs,): number of terms (with repeats) per document
    docs: np.ndarray  # int32 (pairs,): local document index, ascending
    terms: np.ndarray  # int32 (pairs,): local term id
    tf: np.ndarray  # int32 (pairs,): count of the term in the document


def _count_terms(token_lists: Iterable[Sequence[str]]) -> TermCounts:
    local: dict[str, int] = {}
    flat: list[int] = []
    lengths: list[int] = []
    for terms in token_lists:
        lengths.append(len(terms))
        flat.extend([local.setdefault(t, len(local)) for t in terms])
    lens = np.asarray(lengths, dtype=np.int64)
    width = max(len(local), 1)
    keys = np.repeat(np.arange(lens.size, dtype=np.int64), lens) * width + np.asarray(flat, dtype=np.int64)
    pairs, tf = np.unique(keys, return_counts=True)  # sorted: by document, then term
    return TermCounts(list(local), lens, (pairs // width).astype(np.int32), (pairs % width).astype(np.int32),
                   tf.astype(np.int32))


def _count_texts(config: dict[str, Any], texts: list[str]) -> TermCounts:
    """Worker task: tokenize ``texts`` with the analyzer of ``config`` and count their terms."""
    analyzer = get_analyzer(AnalyzerConfig.from_dict(config))
    return _count_terms(analyzer.tokenize(t) for t in texts)


def count_corpus(texts: Sequence[str], analyzer: AnalyzerConfig | None = None, workers: int = 1
                 ) -> Iterator[TermCounts]:
    """Tokenize ``texts`` and count their terms, ``CHUNK_DOCS`` texts per ``TermCounts``, in order.

    With ``workers`` > 1 the chunks are tokenized in that many processes (started with ``spawn``: the caller may
    hold threads, OpenMP's or torch's, that a forked child would inherit locked; a script calling this at import
    time needs the usual ``if __name__ == "__main__":`` guard).
    """
    config = analyzer or AnalyzerConfig()
    chunks = _chunks(texts, CHUNK_DOCS)
    if workers <= 1:
        tokenizer = get_analyzer(config)
        for chunk in chunks:
            yield _count_terms(tokenizer.tokenize(t) for t in chunk)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_count_texts, _repeat(config.to_dict()), map(list, chunks))


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    position: int


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest positive scores, best first; ties broken by position (stable).

    Scores are compared at 1e-6 so that equal scores which differ only by float rounding (BM25+'s constant is
    subtracted) are treated as the ties they are.

    Over a large array, a cheap lower bound of the k-th best score (the k-th best of every 16th entry: it cannot be
    higher than the k-th best of all) first narrows the field to a small superset of the answer; the exact rule
    then runs on that superset only, with the same result (at a million documents a common query term matches
    half of them, and rounding and partitioning all of those was a third of a query's time).
    """
    candidates = None
    if scores.size > 64 * k and k > 0:
        sample = scores[::16]
        if np.count_nonzero(sample > 0) >= k:
            bound = np.partition(sample, sample.size - k)[sample.size - k]  # <= the k-th best of all scores
            candidates = np.flatnonzero(scores >= bound - 2e-6)  # every score whose 6-decimal key can reach the cut
            candidates = candidates[scores[candidates] > 0]
    if candidates is None:
        candidates = np.flatnonzero(scores > 0)
    keys = np.round(scores[candidates], 6)
    if candidates.size > k:
        threshold = np.partition(keys, candidates.size - k)[candidates.size - k]
        keep = keys >= threshold  # every document tied with the k-th stays in the running
        candidates, keys = candidates[keep], keys[keep]
    order = np.lexsort((candidates, -keys))
    return candidates[order][:k]


def _repeat(value: Any) -> Iterator[Any]:
    while True:
        yield value


def check_params(params: dict[str, Any] | None) -> dict[str, Any]:
    p = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown BM25 parameters: {sorted(unknown)}")
    if p["method"] != "bm25+":
        raise ValueError(f"only BM25+ is supported (method 'bm25+'), not {p['method']!r}")
    return p


def _check_ids(ids: Sequence[str], n: int) -> list[str]:
    id_list = list(ids)
    if len(id_list) != n:
        raise ValueError(f"{len(id_list)} ids but {n} documents")
    if not id_list:
        raise ValueError("cannot build a BM25 index over no documents")
    if len(set(id_list)) != len(id_list):
        raise ValueError("document ids must be unique")
    return id_list


def _ranges(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
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

    def __len__(self) -> int:
        return len(self.ids)

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
        id_list = _check_ids(ids, offset)
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
        _check_ids(ids, len(texts))
        workers = default_workers() if workers is None else max(1, int(workers))
        used = workers if workers > 1 and len(texts) >= PARALLEL_MIN_DOCS else 1
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


class BM25Index:
    """BM25+ over one or more segments, each with an optional live mask; positions run across the segments in
    order. ``build`` makes a one-segment index from ids and texts; ``search`` takes a query string."""

    def __init__(self, segments: Sequence[BM25Segment], live: Sequence[np.ndarray | None] | None = None,
                 params: dict[str, Any] | None = None) -> None:
        if not segments:
            raise ValueError("a BM25 index needs at least one segment")
        self.segments = list(segments)
        self.live = list(live) if live is not None else [None] * len(self.segments)
        if len(self.live) != len(self.segments):
            raise ValueError(f"{len(self.live)} live masks for {len(self.segments)} segments")
        self.params = check_params(params)
        config = self.segments[0].manifest["analyzer"]
        if any(seg.manifest["analyzer"] != config for seg in self.segments):
            raise ValueError("segments made with different analyzers cannot be searched together")
        self.analyzer_config = AnalyzerConfig.from_dict(config)
        self.analyzer = get_analyzer(self.analyzer_config)
        sizes = [len(s) for s in self.segments]
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.size = int(self.offsets[-1])
        self.ids: list[str] = [doc_id for seg in self.segments for doc_id in seg.ids]
        live_all = np.ones(self.size, dtype=bool)
        total_len = 0
        self._deleted_df: list[np.ndarray | None] = []
        for i, (seg, mask) in enumerate(zip(self.segments, self.live, strict=True)):
            if mask is not None:
                mask = np.asarray(mask, dtype=bool)
                if mask.shape != (len(seg),):
                    raise ValueError(f"segment {i}: live mask of shape {mask.shape}, expected ({len(seg)},)")
                self.live[i] = None if mask.all() else mask
            mask = self.live[i]
            if mask is None:
                total_len += int(np.asarray(seg.lengths).sum())
                self._deleted_df.append(None)
            else:
                live_all[self.offsets[i] : self.offsets[i + 1]] = mask
                total_len += int(np.asarray(seg.lengths)[mask].sum())
                dead_terms = np.asarray(seg.doc_terms)[_ranges(seg.doc_ptr, np.flatnonzero(~mask))]
                self._deleted_df.append(np.bincount(dead_terms, minlength=seg.n_terms))
        self.live_mask = live_all  # per position: False where the document is deleted or superseded
        self.doc_count = int(live_all.sum())  # N: live documents
        self.avgdl = total_len / self.doc_count if self.doc_count else 0.0
        self._all_live = bool(live_all.all())
        k1, b = float(self.params["k1"]), float(self.params["b"])
        # per document: k1 (1 - b + b dl / avgdl), float64, as rank-bm25 and bm25s compute it
        self._norm = [k1 * (1 - b + b * np.asarray(seg.lengths) / self.avgdl) if self.avgdl else
                      np.full(len(seg), k1 * (1 - b)) for seg in self.segments]
        self._position: dict[str, int] = {}
        for pos in np.flatnonzero(live_all).tolist():
            self._position[self.ids[pos]] = pos
        if len(self._position) != self.doc_count:
            raise ValueError("an id is live in more than one place")
        self.manifest = {**self.segments[0].manifest, "params": self.params, "doc_count": self.doc_count,
                         "segments": len(self.segments), "vocab_size": sum(s.n_terms for s in self.segments)}

    def __len__(self) -> int:
        return self.size

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], analyzer: AnalyzerConfig | None = None,
              params: dict[str, Any] | None = None, progress: Callable[[int], None] | None = None,
              workers: int | None = None) -> BM25Index:
        """A one-segment index of ``texts`` under ``ids``. ``workers``: processes that tokenize (None:
        ``default_workers()``); 1, or fewer than ``PARALLEL_MIN_DOCS`` texts, tokenizes in this process."""
        p = check_params(params)
        return cls([BM25Segment.build(ids, texts, analyzer, progress, workers)], params=p)

    @classmethod
    def build_from_tokens(cls, ids: Sequence[str], tokens: Sequence[list[str]], analyzer: AnalyzerConfig | None = None,
                          params: dict[str, Any] | None = None) -> BM25Index:
        """Index already-tokenized documents (the tokens must come from ``analyzer``)."""
        p = check_params(params)
        if len(ids) != len(tokens):
            raise ValueError(f"{len(ids)} ids but {len(tokens)} token lists")
        counts = (_count_terms(chunk) for chunk in _chunks(tokens, CHUNK_DOCS))
        return cls([BM25Segment.from_counts(ids, counts, analyzer or AnalyzerConfig())], params=p)

    # --- collection statistics ------------------------------------------------------------------------
    def df(self, term: str) -> int:
        """Live documents containing ``term``, over all segments."""
        total = 0
        for seg, dead in zip(self.segments, self._deleted_df, strict=True):
            col = seg.vocab.get(term)
            if col is not None:
                total += int(seg.indptr[col + 1] - seg.indptr[col]) - (0 if dead is None else int(dead[col]))
        return total

    def idf(self, term: str) -> float:
        """BM25+'s idf of ``term``, log((N + 1) / df): how informative a shared term is (0 if unknown)."""
        df = self.df(term)
        return math.log((self.doc_count + 1) / df) if df else 0.0

    # --- querying -------------------------------------------------------------------------------------
    def query_terms(self, query: str) -> list[str]:
        """The query's terms that some live document contains (others cannot match)."""
        return [t for t in self.analyzer.tokenize(query) if t != "" and self.df(t) > 0]

    def _postings(self, term: str, idf: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions, scores) of ``term``'s postings in each segment: what each document earns from it."""
        k1 = float(self.params["k1"])
        for i, seg in enumerate(self.segments):
            col = seg.vocab.get(term)
            if col is None:
                continue
            a, b = int(seg.indptr[col]), int(seg.indptr[col + 1])
            if b <= a:
                continue
            docs = np.asarray(seg.docs[a:b])
            tf = np.asarray(seg.tf[a:b], dtype=np.float64)
            yield docs + self.offsets[i], idf * ((k1 + 1) * tf) / (self._norm[i][docs] + tf)

    def scores_for_terms(self, terms: Sequence[str]) -> np.ndarray:
        """The score every position earns from matching ``terms`` (0 where it matches none, or is not live).

        A repeated query term counts again, as in rank-bm25. One weighted bincount over the query's postings, in
        term order, adds each document's contributions in the same order as a term-by-term loop."""
        n = self.size
        scores: np.ndarray | None = None
        idx: list[np.ndarray] = []
        val: list[np.ndarray] = []
        size = 0
        for term in terms:
            idf = self.idf(term)
            if not idf:
                continue
            for pos, contrib in self._postings(term, idf):
                idx.append(pos)
                val.append(contrib)
                size += pos.size
            if size >= _POSTINGS_GROUP:  # groups bound the concatenated postings (~16M, 256 MB)
                part = np.bincount(np.concatenate(idx), weights=np.concatenate(val), minlength=n)
                scores = part if scores is None else scores + part
                idx, val, size = [], [], 0
        if idx:
            part = np.bincount(np.concatenate(idx), weights=np.concatenate(val), minlength=n)
            scores = part if scores is None else scores + part
        if scores is None:
            return np.zeros(n, dtype=np.float64)
        if not self._all_live:
            scores[~self.live_mask] = 0.0
        return scores

    def full_scores(self, terms: Sequence[str]) -> np.ndarray:
        """The textbook BM25+ score, including the constant every document gets (for reference checks)."""
        constant = float(self.params["delta"]) * sum(self.idf(t) for t in terms)
        return self.scores_for_terms(terms) + constant

    def search(self, query: str, k: int = 10, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query``; ``allowed`` is an optional boolean mask over positions."""
        return self.search_terms(self.query_terms(query), k, allowed)

    def search_terms(self, terms: Sequence[str], k: int = 10, allowed: np.ndarray | None = None) -> list[Hit]:
        if k <= 0:
            raise ValueError("k must be positive")
        scores = self.scores_for_terms(terms)
        if allowed is not None:
            if allowed.shape != scores.shape or allowed.dtype != np.bool_:
                raise ValueError(f"allowed must be a boolean mask of length {self.size}")
            scores = np.where(allowed, scores, 0.0)
        return [Hit(self.ids[p], float(scores[p]), int(p)) for p in top_k(scores, k)]

    def coverage(self, terms: Sequence[str], positions: np.ndarray) -> np.ndarray:
        """Per position, the idf-weighted share of the distinct ``terms`` its document contains (0..1).

        A column's document positions are ascending, so each term costs one binary search per position."""
        pos = np.asarray(positions, dtype=np.int64)
        out = np.zeros(pos.size, dtype=np.float64)
        seg_of = np.searchsorted(self.offsets, pos, side="right") - 1
        total = 0.0
        for term in dict.fromkeys(terms):
            weight = self.idf(term)
            if not weight:
                continue
            total += weight
            for i, seg in enumerate(self.segments):
                rows = np.flatnonzero(seg_of == i)
                col = seg.vocab.get(term)
                if not rows.size or col is None:
                    continue
                a, b = int(seg.indptr[col]), int(seg.indptr[col + 1])
                if b <= a:
                    continue
                local = pos[rows] - self.offsets[i]
                column = np.asarray(seg.docs[a:b])
                at = np.minimum(np.searchsorted(column, local), b - a - 1)
                out[rows] += weight * (column[at].astype(np.int64) == local)
        return out / total if total > 0 else out

    def specificity(self, text: str) -> float:
        """How specific ``text`` is in this index: the smallest idf of its analysed terms, 0 if any term is absent
        (the index cannot match it as a whole). Query translation keeps the candidates with a positive value."""
        terms = self.analyzer.tokenize(text)
        if not terms:
            return 0.0
        return min(self.idf(t) for t in terms)

    def live_ids(self) -> list[str]:
        """The ids of the live documents."""
        return list(self._position)

    def position(self, doc_id: str) -> int | None:
        """The live position of ``doc_id`` (None if it is not indexed, or deleted)."""
        return self._position.get(doc_id)

    # --- persistence (one segment) --------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write a one-segment index without deletions (its segment) to ``directory`` atomically."""
        if len(self.segments) != 1 or not self._all_live:
            raise ValueError("only a one-segment index without deletions saves as a folder; save its segments")
        return self.segments[0].save(directory)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True, params: dict[str, Any] | None = None) -> BM25Index:
        return cls([BM25Segment.load(directory, mmap=mmap)], params=params)
