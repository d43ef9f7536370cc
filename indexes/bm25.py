"""BM25 keyword index over ids + text, built on bm25s, saved as plain files and loaded memory-mapped.

Scoring is BM25+ (Lv & Zhai, 2011: the term-frequency part is lower-bounded by ``delta``), with rank-bm25's
``BM25Plus`` defaults (k1 = 1.5, b = 0.75, delta = 1). Two reasons: patents range from a 20-character title
to 10,000 characters of claims, and BM25+ stops long documents from being pushed below short ones that
match fewer terms; and rank-bm25 implements the same formula exactly, so the reference check (same top-10,
same scores) is exact rather than "close". BM25+ gives every document ``delta * idf`` for each query term
it lacks; that part is the same constant for every document, so ranking ignores it, and ``search`` reports
only the part earned by matching terms: a document with no query term scores 0 and is never returned.

On disk (a folder): bm25s's own ``.npy`` arrays and ``vocab.index.json`` / ``params.index.json``, plus
``ids.json`` (position -> id) and ``manifest.json`` (format version, analyzer settings, parameters, document
count, build time). ``load(dir, mmap=True)`` memory-maps the score matrix.

Building at scale. bm25s's own ``index`` wants every document as a list of token strings and then loops over
documents in Python (a vocabulary pass, a document-frequency pass, a ``Counter`` per document); at a million
patents the token lists alone take tens of GB and the loops minutes. So the index is built here, in the same
bm25s layout and with bm25s's arithmetic (same dtypes, same order of operations): texts are tokenized in chunks,
in worker processes when there are many (``workers``; default: the CPUs available, env ``PMATCH_INDEX_WORKERS``),
and each chunk comes back as (its vocabulary, and per document the distinct term ids and their counts); the
parent only re-numbers chunk vocabularies and concatenates arrays. Scores are then computed with numpy over all
(document, term) pairs at once, and the CSC matrix bm25s reads is made with scipy's CSR->CSC conversion (a
counting sort). The result is read and searched by bm25s (``load``) exactly like one it built itself.

Querying sums the per-term score columns in float64 (``scores[indices[s:e]] += data[s:e]``: positions within
one column are distinct, so the buffered add is exact); a document that matches no term scores exactly 0.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from indexes.analyzer import AnalyzerConfig, get_analyzer
from indexes.atomic import atomic_dir
from indexes.settings import index_settings

FORMAT_VERSION = 1
DEFAULT_PARAMS: dict[str, Any] = {"method": "bm25+", "k1": 1.5, "b": 0.75, "delta": 1.0, "dtype": "float32"}
CHUNK_DOCS = 2_000  # texts per tokenization task
PARALLEL_MIN_DOCS = 20_000  # below this, worker start-up (loading the analyzer: ~1 s) costs more than it saves
_POSTINGS_GROUP = 16_000_000  # postings summed per bincount at query time
_SCORE_SLICE = 8_000_000  # (document, term) pairs scored per numpy pass (bounds float64 temporaries)


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


def _build_retriever(counts: Iterable[TermCounts], n_docs: int, p: dict[str, Any],
                     progress: Callable[[int], None] | None = None) -> bm25s.BM25:
    """A bm25s BM25+ retriever (same arrays, same arithmetic as ``bm25s.BM25.index``) from per-chunk term counts."""
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
    if offset != n_docs:
        raise RuntimeError(f"tokenized {offset} documents, expected {n_docs}")
    doc_of = np.concatenate(docs) if docs else np.zeros(0, np.int32)
    term_of = np.concatenate(terms) if terms else np.zeros(0, np.int32)
    tf_of = np.concatenate(tfs) if tfs else np.zeros(0, np.int32)
    del docs, terms, tfs
    doc_len = np.concatenate(lengths)
    n_vocab = max(len(vocab), 1)  # bm25s sizes the matrix by the vocabulary; an all-empty corpus still gets a column
    dtype = np.dtype(p["dtype"])
    k1, b, delta = float(p["k1"]), float(p["b"]), float(p["delta"])
    # bm25s: avg_doc_len = np.array([len(doc) ...]).mean(); BM25+ idf = log((N + 1) / df), stored in dtype;
    # the non-occurrence score of a term is idf * tfc(0) = idf * delta.
    avg_doc_len = doc_len.mean() if doc_len.size else np.float64(0.0)
    df = np.bincount(term_of, minlength=n_vocab)
    with np.errstate(divide="ignore"):
        idf64 = np.where(df > 0, np.log((n_docs + 1) / np.maximum(df, 1)), 0.0)
    idf = idf64.astype(dtype)
    nonoccurrence = np.where(df > 0, idf64 * delta, 0.0).astype(dtype)
    # Per (document, term) pair, as bm25s computes it: tfc = (k1 + 1) tf / (k1 (1 - b + b dl / avgdl) + tf) + delta
    # (tf in dtype, the length part in float64), score = idf[t] * tfc - nonoccurrence[t], stored in dtype.
    data = np.empty(term_of.size, dtype=dtype)
    for start in range(0, term_of.size, _SCORE_SLICE):
        sl = slice(start, start + _SCORE_SLICE)
        tf = tf_of[sl].astype(dtype)
        t = term_of[sl]
        norm = k1 * (1 - b + b * doc_len[doc_of[sl]] / avg_doc_len)
        tfc = ((k1 + 1) * tf) / (norm + tf) + delta
        data[sl] = idf[t] * tfc - nonoccurrence[t]
    del tf_of
    indices, indptr, data = _to_csc(doc_of, term_of, data, n_docs, n_vocab)
    retriever = bm25s.BM25(method=p["method"], k1=k1, b=b, delta=delta, dtype=p["dtype"])
    retriever.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
    retriever.nonoccurrence_array = nonoccurrence
    vocab[""] = len(vocab)  # bm25s's empty token, after the real ones (never in the matrix, never queried)
    retriever.vocab_dict = vocab
    retriever.unique_token_ids_set = set(vocab.values())
    return retriever


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


class BM25Index:
    """A BM25+ index: ``build`` from ids and texts, ``search`` with a query string, ``save`` / ``load``."""

    def __init__(self, retriever: bm25s.BM25, ids: list[str], manifest: dict[str, Any]) -> None:
        self._retriever = retriever
        self.ids = ids
        self.manifest = manifest
        self.analyzer_config = AnalyzerConfig.from_dict(manifest["analyzer"])
        self.analyzer = get_analyzer(self.analyzer_config)
        self._position = {doc_id: i for i, doc_id in enumerate(ids)}
        nonocc = retriever.nonoccurrence_array
        self._nonoccurrence = None if nonocc is None else np.asarray(nonocc, dtype=np.float64)
        self._data = retriever.scores["data"]
        self._indices = retriever.scores["indices"]
        self._indptr = np.asarray(retriever.scores["indptr"], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        analyzer: AnalyzerConfig | None = None,
        params: dict[str, Any] | None = None,
        progress: Callable[[int], None] | None = None,
        workers: int | None = None,
    ) -> BM25Index:
        """Tokenize ``texts`` with the analyzer and index them under ``ids`` (unique, same length).

        ``workers``: processes that tokenize (None: ``default_workers()``); 1, or fewer than
        ``PARALLEL_MIN_DOCS`` texts, tokenizes in this process. ``progress(n)`` gets the count of texts done.
        """
        config = analyzer or AnalyzerConfig()
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        p, ids = cls._check_input(ids, len(texts), params)
        started = time.time()
        workers = default_workers() if workers is None else max(1, int(workers))
        used = workers if workers > 1 and len(texts) >= PARALLEL_MIN_DOCS else 1
        retriever = _build_retriever(count_corpus(texts, config, used), len(ids), p, progress)
        return cls(retriever, ids, cls._manifest(config, p, ids, retriever, started, used))

    @classmethod
    def build_from_tokens(
        cls,
        ids: Sequence[str],
        tokens: Sequence[list[str]],
        analyzer: AnalyzerConfig | None = None,
        params: dict[str, Any] | None = None,
    ) -> BM25Index:
        """Index already-tokenized documents (the tokens must come from ``analyzer``)."""
        config = analyzer or AnalyzerConfig()
        if len(ids) != len(tokens):
            raise ValueError(f"{len(ids)} ids but {len(tokens)} token lists")
        p, ids = cls._check_input(ids, len(tokens), params)
        started = time.time()
        retriever = _build_retriever((_count_terms(chunk) for chunk in _chunks(tokens, CHUNK_DOCS)), len(ids), p)
        return cls(retriever, ids, cls._manifest(config, p, ids, retriever, started, 1))

    @staticmethod
    def _check_input(ids: Sequence[str], n: int, params: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
        p = {**DEFAULT_PARAMS, **(params or {})}
        unknown = set(p) - set(DEFAULT_PARAMS)
        if unknown:
            raise ValueError(f"unknown BM25 parameters: {sorted(unknown)}")
        if p["method"] != "bm25+":
            raise ValueError(f"only BM25+ is supported (method 'bm25+'), not {p['method']!r}")
        id_list = list(ids)
        if len(id_list) != n:
            raise ValueError(f"{len(id_list)} ids but {n} documents")
        if not id_list:
            raise ValueError("cannot build a BM25 index over no documents")
        if len(set(id_list)) != len(id_list):
            raise ValueError("document ids must be unique")
        return p, id_list

    @staticmethod
    def _manifest(config: AnalyzerConfig, p: dict[str, Any], ids: list[str], retriever: bm25s.BM25,
                  started: float, workers: int) -> dict[str, Any]:
        return {
            "format": "patent-match/bm25",
            "format_version": FORMAT_VERSION,
            "analyzer": config.to_dict(),
            "params": p,
            "doc_count": len(ids),
            "vocab_size": len(retriever.vocab_dict),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.time() - started, 3),
            "build_workers": workers,
            "bm25s_version": bm25s.__version__,
        }

    # --- querying -------------------------------------------------------------------------------------
    def query_terms(self, query: str) -> list[str]:
        """The query's terms that exist in this index's vocabulary (others cannot match)."""
        vocab = self._retriever.vocab_dict
        return [t for t in self.analyzer.tokenize(query) if t in vocab and t != ""]

    def scores_for_terms(self, terms: Sequence[str]) -> np.ndarray:
        """The score every document earns from matching ``terms`` (0 where it matches none)."""
        n = len(self.ids)
        vocab = self._retriever.vocab_dict
        data, indices, indptr = self._data, self._indices, self._indptr
        # A repeated query term counts again, as in bm25s and rank-bm25. The stored score is BM25+'s minus the
        # constant every document gets: exactly what matching earns. One weighted bincount over the query's
        # postings, in term order, adds each document's contributions in the same order as a term-by-term loop
        # (bit-identical sums) at ~1/3 of the cost of numpy's buffered ``scores[idx] += data`` per term.
        spans = [(int(indptr[t]), int(indptr[t + 1])) for t in (vocab[term] for term in terms)]
        spans = [(a, b) for a, b in spans if b > a]
        if not spans:
            return np.zeros(n, dtype=np.float64)
        scores: np.ndarray | None = None
        group: list[tuple[int, int]] = []
        size = 0
        for i, (a, b) in enumerate(spans):  # groups bound the concatenated postings (~16M, 128 MB)
            group.append((a, b))
            size += b - a
            if size >= _POSTINGS_GROUP or i == len(spans) - 1:
                idx = np.concatenate([indices[a:b] for a, b in group])
                val = np.concatenate([data[a:b] for a, b in group])
                part = np.bincount(idx, weights=val, minlength=n)
                scores = part if scores is None else scores + part
                group, size = [], 0
        assert scores is not None
        return scores

    def full_scores(self, terms: Sequence[str]) -> np.ndarray:
        """The textbook BM25+ score, including the constant every document gets (for reference checks)."""
        if not terms:
            return np.zeros(len(self.ids), dtype=np.float64)
        token_ids = [self._retriever.vocab_dict[t] for t in terms]
        return np.asarray(self._retriever.get_scores_from_ids(token_ids), dtype=np.float64)

    def search(self, query: str, k: int = 10, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query``; ``allowed`` is an optional boolean mask over positions."""
        return self.search_terms(self.query_terms(query), k, allowed)

    def search_terms(self, terms: Sequence[str], k: int = 10, allowed: np.ndarray | None = None) -> list[Hit]:
        if k <= 0:
            raise ValueError("k must be positive")
        scores = self.scores_for_terms(terms)
        if allowed is not None:
            if allowed.shape != scores.shape or allowed.dtype != np.bool_:
                raise ValueError(f"allowed must be a boolean mask of length {len(self.ids)}")
            scores = np.where(allowed, scores, 0.0)
        return [Hit(self.ids[p], float(scores[p]), int(p)) for p in top_k(scores, k)]

    def idf(self, term: str) -> float:
        """BM25+'s idf of ``term``, log((N + 1) / df): how informative a shared term is (0 if unknown)."""
        token = self._retriever.vocab_dict.get(term)
        if token is None:
            return 0.0
        indptr = self._retriever.scores["indptr"]
        df = int(indptr[token + 1] - indptr[token])
        return float(np.log((len(self.ids) + 1) / df)) if df else 0.0

    def coverage(self, terms: Sequence[str], positions: np.ndarray) -> np.ndarray:
        """Per position, the idf-weighted share of the distinct ``terms`` its document contains (0..1).

        A column's document positions are ascending (the build keeps row order per column), so each term costs
        one binary search per position, whatever its document frequency.
        """
        pos = np.asarray(positions, dtype=np.int64)
        out = np.zeros(pos.size, dtype=np.float64)
        total = 0.0
        vocab = self._retriever.vocab_dict
        for term in dict.fromkeys(terms):
            token = vocab.get(term)
            if token is None:
                continue
            a, b = int(self._indptr[token]), int(self._indptr[token + 1])
            if b <= a:
                continue
            weight = float(np.log((len(self.ids) + 1) / (b - a)))
            column = self._indices[a:b]
            at = np.minimum(np.searchsorted(column, pos), b - a - 1)
            out += weight * (np.asarray(column[at], dtype=np.int64) == pos)
            total += weight
        return out / total if total > 0 else out

    def specificity(self, text: str) -> float:
        """How specific ``text`` is in this index: the smallest idf of its analysed terms, 0 if any term is absent
        (the index cannot match it as a whole). Query translation keeps the candidates with a positive value."""
        terms = self.analyzer.tokenize(text)
        if not terms:
            return 0.0
        return min(self.idf(t) for t in terms)

    def position(self, doc_id: str) -> int | None:
        return self._position.get(doc_id)

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the index to ``directory`` atomically: a reader sees the old folder or the new one."""
        target = Path(directory)
        with atomic_dir(target) as tmp:
            self._retriever.save(str(tmp))
            (tmp / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
            (tmp / "manifest.json").write_text(json.dumps(self.manifest, ensure_ascii=False, indent=2), "utf-8")
        return target

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> BM25Index:
        path = Path(directory)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no BM25 index at {path} (manifest.json missing)")
        manifest = json.loads(manifest_path.read_text("utf-8"))
        if manifest.get("format") != "patent-match/bm25" or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{manifest_path}: BM25 index format {manifest.get('format')!r} v{manifest.get('format_version')} "
                f"is not readable by this build (v{FORMAT_VERSION}); rebuild with `pmatch index build`"
            )
        retriever = bm25s.BM25.load(str(path), mmap=mmap, load_corpus=False)
        ids = json.loads((path / "ids.json").read_text("utf-8"))
        if len(ids) != manifest["doc_count"]:
            raise ValueError(f"{path}: ids.json has {len(ids)} ids, manifest says {manifest['doc_count']}")
        return cls(retriever, ids, manifest)

