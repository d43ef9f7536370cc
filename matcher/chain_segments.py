"""Which patents and demands belong to each segment of an industrial chain, and why.

Per segment, the patents that pass the chain's and segment's patent filters and have an IPC/CPC code under one of
the segment's prefixes, OR contain one of its keywords as whole words in title/abstract AND are about the segment
(dense cosine to its description >= ``keyword_similarity``), OR are among the ``expand_patents`` closest to the
segment by the hybrid ranker with cosine >= ``semantic_similarity``; minus those containing a negative keyword;
plus its seed patents (always, filters or not: the organiser named them). Demands likewise (title/description), by
keyword or ``expand_demands``. Each record says why (``ipc:H01M``, ``kw:正极材料``, ``semantic``, ``seed``, and
``sim:0.43``, its cosine).

Keyword matching is explainable (``KeywordMatcher``): whole words of jieba's accurate segmentation, so 电池 is found
in 锂离子电池 but not in 蓄电池; an English keyword needs all its (stemmed) words, in any order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from indexes.analyzer import read_user_dict, user_dict_path
from matcher.chains import Chain, Segment
from matcher.config import Mode
from matcher.i18n import Message
from matcher.search import Searcher
from matcher.served import Snapshot
from matcher.texts import CJK, context_text

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)

@dataclass
class SegmentPick:
    """What one segment selected: index position -> why (``ipc:H01M``, ``kw:正极材料``, ``semantic``, ``seed``)."""

    segment: Segment
    patents: dict[int, list[str]] = field(default_factory=dict)
    demands: dict[int, list[str]] = field(default_factory=dict)
    hits: dict[str, dict[str, int]] = field(default_factory=dict)  # "patents"/"demands" -> selector -> count

    def patent_mask(self, size: int) -> np.ndarray:
        mask = np.zeros(size, dtype=bool)
        mask[list(self.patents)] = True
        return mask


@dataclass
class Selection:
    chain: Chain
    picks: list[SegmentPick]
    warnings: list[Message] = field(default_factory=list)

    @property
    def patent_positions(self) -> set[int]:
        return {p for pick in self.picks for p in pick.patents}

    @property
    def demand_positions(self) -> set[int]:
        return {d for pick in self.picks for d in pick.demands}


@cache
def _accurate_cut() -> Callable[[str], list[str]]:
    """jieba's accurate mode with the patent dictionary: each character in exactly one word, so word boundaries
    are where a keyword may start and end (search mode also emits the pieces of compounds)."""
    import rjieba

    cutter = rjieba.Jieba()
    for word, freq, tag in read_user_dict(user_dict_path("patent_zh")):
        cutter.add_word(word, freq, tag)
    return cutter.cut


class KeywordMatcher:
    """Records of one snapshot whose title/abstract (description) contain a keyword as whole words.

    A Chinese keyword must occur, after full-width and traditional characters are folded, starting and ending
    at word boundaries of jieba's accurate segmentation: 电池 matches 锂离子电池 (锂离子|电池) but not 蓄电池, a
    word of its own. An English keyword needs all its stemmed words in the same text, in any order. The BM25
    index narrows to records holding every word first, so only a few texts are read and segmented."""

    def __init__(self, searcher: Searcher, snap: Snapshot) -> None:
        self.searcher = searcher
        self.snap = snap
        self.analyzer = snap.bm25.analyzer
        self._texts: dict[int, tuple[str, frozenset[int], frozenset[str]]] = {}

    def _fold(self, text: str) -> str:
        return re.sub(r"\s+", "", self.analyzer.normalize(text)).lower()

    def mask(self, keyword: str, allowed: np.ndarray) -> np.ndarray:
        words = list(dict.fromkeys(self.analyzer.tokenize(keyword)))
        known = set(self.snap.bm25.query_terms(keyword))
        if not words or any(w not in known for w in words):
            return np.zeros_like(allowed)  # a word no record contains: nothing can match
        # the smallest words (jieba's search mode also emits their concatenations) must all be present
        atoms = [w for w in words if not any(o != w and o in w for o in words)]
        mask = allowed.copy()
        for word in atoms:
            mask &= self.snap.bm25.scores_for_terms([word]) > 0
        positions = np.flatnonzero(mask)
        texts = self._context(positions)
        needle = self._fold(keyword)
        cjk = bool(CJK.search(keyword))
        for pos in positions:
            text, bounds, terms = texts[int(pos)]
            mask[pos] = _whole_word(text, bounds, needle) if cjk else all(w in terms for w in atoms)
        return mask

    def _context(self, positions: np.ndarray) -> dict[int, tuple[str, frozenset[int], frozenset[str]]]:
        missing = [int(p) for p in positions if int(p) not in self._texts]
        if missing:
            ids = [self.snap.bm25.ids[p] for p in missing]
            records = self.searcher.store.get_many(self.snap.kind, ids)
            cut = _accurate_cut()
            for pos, doc_id in zip(missing, ids, strict=True):
                record = records.get(doc_id)
                raw = context_text(record) if record is not None else ""
                folded = self._fold(raw)
                bounds, at = {0}, 0
                for word in cut(folded):
                    at += len(word)
                    bounds.add(at)
                self._texts[pos] = (folded, frozenset(bounds), frozenset(self.analyzer.tokenize(raw)))
        return self._texts


def _whole_word(text: str, bounds: frozenset[int], needle: str) -> bool:
    start = text.find(needle)
    while start != -1:
        if start in bounds and start + len(needle) in bounds:
            return True
        start = text.find(needle, start + 1)
    return False


def _select(searcher: Searcher, snap: Snapshot, matcher: KeywordMatcher, segment: Segment, allowed: np.ndarray,
            ipc_mask: np.ndarray | None, expand: int, mode: Mode | None) -> tuple[dict[int, list[str]], dict[str, int]]:
    """Positions -> reasons. IPC selects alone; a keyword hit also needs the record to be about the segment
    (cosine to the segment's description >= ``keyword_similarity``), so 轻量化 in a GIS software demand does not
    enter a materials segment; semantic expansion takes the ``expand`` closest records at or above
    ``semantic_similarity``; a negative keyword removes a record whatever selected it."""
    reasons: dict[int, list[str]] = {}
    hits: dict[str, int] = {}
    closeness = _closeness(searcher, snap, segment)

    def add(mask: np.ndarray, why: str) -> None:
        found = np.flatnonzero(mask)
        hits[why] = len(found)
        for pos in found:
            reasons.setdefault(int(pos), []).append(why)

    if ipc_mask is not None:
        add(allowed & ipc_mask, "ipc:" + "|".join(segment.ipc))
    about = allowed if closeness is None else allowed & (closeness >= segment.keyword_similarity)
    for keyword in segment.keywords.all():
        found = matcher.mask(keyword, allowed)
        off_topic = int((found & ~about).sum())
        if off_topic:
            hits[f"kw:{keyword} (off-topic)"] = off_topic
        add(found & about, f"kw:{keyword}")
    if expand and allowed.any():
        results = searcher.search(snap, segment.query(), expand, allowed, mode)
        semantic = np.zeros_like(allowed)
        for r in results:
            pos = snap.bm25.position(r.id)
            if pos is not None and (closeness is None or closeness[pos] >= segment.semantic_similarity):
                semantic[pos] = True
        add(semantic, "semantic")
    negative = np.zeros_like(allowed)
    for keyword in segment.negative_keywords.all():
        negative |= matcher.mask(keyword, allowed)
    if negative.any():
        hits["negative"] = sum(1 for pos in reasons if negative[pos])
        reasons = {pos: why for pos, why in reasons.items() if not negative[pos]}
    if closeness is not None:
        for pos, why in reasons.items():
            why.append(f"sim:{closeness[pos]:.2f}")
    return reasons, hits


def _closeness(searcher: Searcher, snap: Snapshot, segment: Segment) -> np.ndarray | None:
    """Every record's cosine to the segment's description (its keywords when it has none); None without a dense
    index."""
    if snap.dense is None:
        return None
    query = segment.description or segment.query()
    vector = searcher.embedder(snap).encode_queries([query])[0]
    return np.asarray(snap.dense.vectors, dtype=np.float32) @ np.asarray(vector, dtype=np.float32)


def select_chain(searcher: Searcher, chain: Chain, mode: Mode | None = None,
                 progress: ProgressFn | None = None) -> Selection:
    """The patents and demands of every segment of ``chain`` (positions in the served snapshots)."""
    psnap, dsnap = searcher.snapshot("patents"), searcher.snapshot("demands")
    pmatcher, dmatcher = KeywordMatcher(searcher, psnap), KeywordMatcher(searcher, dsnap)
    selection = Selection(chain, [])
    for i, segment in enumerate(chain.segments):
        if progress:
            progress("select", i, len(chain.segments))
        pick = SegmentPick(segment)
        pfilters = chain.segment_patent_filters(segment)
        allowed = psnap.facets.patent_mask(pfilters)
        ipc_mask = None
        if segment.ipc:
            ipc_mask = psnap.facets.patent_mask(pfilters.model_copy(update={"ipc": segment.ipc}))
        pick.patents, pick.hits["patents"] = _select(searcher, psnap, pmatcher, segment, allowed, ipc_mask,
                                                     segment.expand_patents, mode)
        seeds = 0
        for seed in segment.seeds:
            canonical = searcher.store.resolve("patents", seed)
            pos = psnap.bm25.position(canonical) if canonical else None
            if pos is None:
                selection.warnings.append(Message(
                    "chain.warn.seed_not_indexed" if canonical else "chain.warn.seed_unknown",
                    source=chain.source or chain.name, i=i, segment=segment.id, seed=repr(seed)))
                continue
            pick.patents.setdefault(pos, []).append("seed")
            seeds += 1
        pick.hits["patents"]["seed"] = seeds
        dallowed = dsnap.facets.demand_mask(chain.segment_demand_filters(segment))
        pick.demands, pick.hits["demands"] = _select(searcher, dsnap, dmatcher, segment, dallowed, None,
                                                     segment.expand_demands, mode)
        dead = [k for k in segment.keywords.all() if not any(c.get(f"kw:{k}") for c in pick.hits.values())]
        if dead:
            selection.warnings.append(Message("chain.warn.dead_keywords", segment=segment.id, count=len(dead),
                                              keywords=", ".join(dead)))
        selection.picks.append(pick)
    if progress:
        progress("select", len(chain.segments), len(chain.segments))
    return selection

