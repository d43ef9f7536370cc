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

Segments are ``indexes.bm25_segment``; tokenizing and counting terms is ``indexes.term_counts``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from indexes.analyzer import AnalyzerConfig, get_analyzer
from indexes.bm25_segment import BM25Segment, row_ranges
from indexes.term_counts import CHUNK_DOCS, chunks, count_terms

DEFAULT_PARAMS: dict[str, Any] = {"method": "bm25+", "k1": 1.5, "b": 0.75, "delta": 1.0}
_POSTINGS_GROUP = 16_000_000  # postings summed per bincount at query time


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


def check_params(params: dict[str, Any] | None) -> dict[str, Any]:
    p = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(p) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown BM25 parameters: {sorted(unknown)}")
    if p["method"] != "bm25+":
        raise ValueError(f"only BM25+ is supported (method 'bm25+'), not {p['method']!r}")
    return p


class JoinedIds(Sequence[str]):
    """The ids of several segments as one sequence by position, without copying them."""

    def __init__(self, parts: list[list[str]], offsets: np.ndarray) -> None:
        self._parts = parts
        self._starts = [int(x) for x in offsets[:-1]]
        self._size = int(offsets[-1])

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        part = bisect.bisect_right(self._starts, index) - 1
        return self._parts[part][index - self._starts[part]]

    def __iter__(self) -> Iterator[str]:
        for part in self._parts:
            yield from part


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
        self.ids: Sequence[str] = (self.segments[0].ids if len(self.segments) == 1
                                   else JoinedIds([seg.ids for seg in self.segments], self.offsets))
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
                dead_terms = np.asarray(seg.doc_terms)[row_ranges(seg.doc_ptr, np.flatnonzero(~mask))]
                self._deleted_df.append(np.bincount(dead_terms, minlength=seg.n_terms))
        self.live_mask = live_all  # per position: False where the document is deleted or superseded
        self.doc_count = int(live_all.sum())  # N: live documents
        self.avgdl = total_len / self.doc_count if self.doc_count else 0.0
        self._all_live = bool(live_all.all())
        k1, b = float(self.params["k1"]), float(self.params["b"])
        # per document: k1 (1 - b + b dl / avgdl), float64, as rank-bm25 and bm25s compute it
        self._norm = [k1 * (1 - b + b * np.asarray(seg.lengths) / self.avgdl) if self.avgdl else
                      np.full(len(seg), k1 * (1 - b)) for seg in self.segments]
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
        counts = (count_terms(chunk) for chunk in chunks(tokens, CHUNK_DOCS))
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

    def holding(self, term: str) -> np.ndarray:
        """The live positions whose document holds ``term``, ascending (read from its postings, no scoring)."""
        parts = []
        for i, seg in enumerate(self.segments):
            col = seg.vocab.get(term)
            if col is not None:
                a, b = int(seg.indptr[col]), int(seg.indptr[col + 1])
                parts.append(np.asarray(seg.docs[a:b], dtype=np.int64) + self.offsets[i])
        held = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return held if self._all_live else held[self.live_mask[held]]

    def holding_all(self) -> Callable[[str], np.ndarray]:
        """A function from a text to the live positions whose document holds every analysed term of it, ascending,
        cached per text (query translation asks it once per candidate word of one query: make one per query)."""
        seen: dict[str, np.ndarray] = {}

        def docs(text: str) -> np.ndarray:
            if text not in seen:
                held: np.ndarray | None = None
                for term in dict.fromkeys(self.query_terms(text)):
                    mine = self.holding(term)
                    held = mine if held is None else np.intersect1d(held, mine, assume_unique=True)
                seen[text] = held if held is not None else np.zeros(0, dtype=np.int64)
            return seen[text]

        return docs

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
        """The ids of the live documents, by position."""
        return [self.ids[p] for p in np.flatnonzero(self.live_mask).tolist()]

    def position(self, doc_id: str) -> int | None:
        """The live position of ``doc_id`` (None if it is not indexed, or deleted). Each segment's id map is made
        once and shared by every snapshot that holds the segment, so opening a snapshot after a flush costs no
        pass over a million ids."""
        for i in range(len(self.segments) - 1, -1, -1):  # newest first: an id is live in one segment at most
            local = self.segments[i].positions.get(doc_id)
            if local is not None and (self.live[i] is None or self.live[i][local]):
                return int(self.offsets[i]) + local
        return None

    # --- persistence (one segment) --------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write a one-segment index without deletions (its segment) to ``directory`` atomically."""
        if len(self.segments) != 1 or not self._all_live:
            raise ValueError("only a one-segment index without deletions saves as a folder; save its segments")
        return self.segments[0].save(directory)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True, params: dict[str, Any] | None = None) -> BM25Index:
        return cls([BM25Segment.load(directory, mmap=mmap)], params=params)
