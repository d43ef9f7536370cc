"""Matchmaking shortlists for an industrial-chain event: select, score, assign, explain.

1. **Select** (``select_chain``). Per segment, the patents that pass the chain's and segment's patent filters
   and have an IPC/CPC code under one of the segment's prefixes, OR contain one of its keywords as whole words
   in title/abstract AND are about the segment (dense cosine to its description >= ``keyword_similarity``), OR
   are among the ``expand_patents`` closest to the segment by the hybrid ranker with cosine >=
   ``semantic_similarity``; minus those containing a negative keyword; plus its seed patents (always, filters
   or not: the organiser named them). Demands likewise (title/description), by keyword or ``expand_demands``.
   Each record says why (``ipc:H01M``, ``kw:正极材料``, ``semantic``, ``seed``, and ``sim:0.43``, its cosine).
   Keyword matching is explainable (``KeywordMatcher``): whole words of jieba's accurate segmentation, so 电池
   is found in 锂离子电池 but not in 蓄电池; an English keyword needs all its (stemmed) words, in any order.
2. **Score** (``score_pairs``). Each selected demand is matched, as ``match_demand`` does (title + description as
   the query), against the patents of every segment it belongs to (one search over their union), through
   ``Searcher.search`` restricted by a mask to those patents, ``candidates`` deep. The pair score is the ranker's
   fused score. It is relative to the demand (convex fusion, the default, min-max normalises each retriever per
   query, so 1.0 is the demand's best candidate on both; RRF is rank-based), so ``min_score`` is a relative floor;
   ``min_similarity`` (default 0.40) is an absolute one, on the dense cosine: a demand whose best candidate is
   below it gets no row rather than a weak one.
3. **Assign** (``matcher.assignment``): the exact maximum-total-score assignment under the per-demand,
   per-patent and per-holder caps, the minimum score and diversity. Diversity: per demand, the candidates are
   grouped into near-duplicates (same normalised title, or dense cosine >= ``duplicate_similarity``, joined
   transitively) and a shortlist takes at most one of each group; the others are listed beside it. Grouping
   (not MMR) keeps the problem a flow problem, so the optimum stays exact with every constraint.
   The holder is a patent's first applicant. **When a patent has no applicant (all Chinese records of the
   bundled data), it is its own holder**, so the holder cap then acts as a per-patent cap.
4. **Explain**: each assigned pair gets the searcher's explanation (shared terms with highlighted snippets,
   the closest sentence) next to every retriever's rank and score and the fused score, and the licence terms
   of both sides.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from indexes.analyzer import read_user_dict, user_dict_path
from matcher.assignment import Caps, Edges, Method, solve, solve_greedy, total
from matcher.chains import Chain, Segment
from matcher.config import Mode
from matcher.explain import GENERIC_TERMS, display_terms, snippet
from matcher.records import Demand, Patent
from matcher.search import Searcher, Snapshot
from matcher.store import Collection
from matcher.texts import CJK, context_text, demand_query

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)
# (searcher, selection, demands by position, options, progress) -> candidates: ``score_pairs`` or one like it
Scorer = Callable[..., "list[Candidate]"]
_NON_WORD = re.compile(r"[\W_]+")
_LEGAL_FORM = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团|"
                         r"\b(corporation|corp|incorporated|inc|limited|ltd|llc|gmbh|co|company|aps)\b\.?)",
                         re.IGNORECASE)
# cooperation modes: offers say 完全转让/许可转让/技术入股/合作生产, demands 技术转让/技术许可/委托开发/技术入股
MODE_FAMILY = {"完全转让": "transfer", "技术转让": "transfer", "许可转让": "licence", "技术许可": "licence",
               "技术入股": "equity"}


@dataclass
class ShortlistOptions:
    per_demand: int = 5
    per_patent: int = 3
    per_holder: int | None = None
    min_score: float = 0.0  # on the fused score (relative: normalised per demand by convex fusion)
    # on the dense cosine (absolute); a pair dense did not retrieve fails it. 0.40 with the shipped use-m3 model:
    # below it the best candidate of a demand is rarely a match (eval/datasets/shortlist_pairs/CARD.md); None: off
    min_similarity: float | None = 0.40
    # the share (idf-weighted) of the demand title's informative words the patent's title/abstract also has; a
    # same-language pair below it gets no row (None: off). A pair across languages has no shared words: it needs
    # a dense cosine of at least ``cross_lingual_similarity`` instead.
    min_coverage: float | None = 0.5
    cross_lingual_similarity: float = 0.5
    candidates: int | None = None  # patents scored per demand; default max(4 x per_demand, 20)
    duplicate_similarity: float = 0.95
    method: Method = "exact"
    mode: Mode | None = None  # the ranker's (default: the workspace's ranker config)
    explain: bool = True

    def resolved_candidates(self) -> int:
        return self.candidates or max(4 * self.per_demand, 20)

    def caps(self) -> Caps:
        return Caps(self.per_demand, self.per_patent, self.per_holder, self.min_score)


# --- selection --------------------------------------------------------------------------------------------
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
    warnings: list[str] = field(default_factory=list)

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
                selection.warnings.append(f"{chain.source or chain.name}: segments[{i}] ({segment.id}): seed "
                                          f"{seed!r} is {'not indexed' if canonical else 'not a stored patent'}")
                continue
            pick.patents.setdefault(pos, []).append("seed")
            seeds += 1
        pick.hits["patents"]["seed"] = seeds
        dallowed = dsnap.facets.demand_mask(chain.segment_demand_filters(segment))
        pick.demands, pick.hits["demands"] = _select(searcher, dsnap, dmatcher, segment, dallowed, None,
                                                     segment.expand_demands, mode)
        dead = [k for k in segment.keywords.all() if not any(c.get(f"kw:{k}") for c in pick.hits.values())]
        if dead:
            selection.warnings.append(f"segment {segment.id}: {len(dead)} keyword(s) match no patent and no demand: "
                                      + ", ".join(dead))
        selection.picks.append(pick)
    if progress:
        progress("select", len(chain.segments), len(chain.segments))
    return selection


# --- scoring and diversity --------------------------------------------------------------------------------
@dataclass
class Candidate:
    demand_pos: int
    patent_pos: int
    segment: int  # index into the chain's segments
    score: float
    retrievers: dict[str, dict[str, Any]]
    group: int = 0  # near-duplicate group among this demand's candidates
    coverage: float | None = None  # ``title_coverage``; None when the two are in different languages


def title_coverage(snap: Snapshot, demand: Demand, patent: Patent) -> float | None:
    """How much of what the demand asks for, in its own words, the patent talks about: the idf-weighted share of
    the demand title's informative words (two characters or more, not generic: ``explain.GENERIC_TERMS``) that
    occur in the patent's title or abstract. None across languages (no words to share)."""
    if demand.language != patent.language:
        return None
    analyzer = snap.bm25.analyzer
    wanted = [t for t in dict.fromkeys(analyzer.tokenize(demand.title)) if len(t) >= 2 and t not in GENERIC_TERMS]
    weights = {t: snap.bm25.idf(t) for t in wanted}
    total = sum(weights.values())
    if not total:
        return None
    have = set(analyzer.tokenize(context_text(patent)))
    return sum(w for t, w in weights.items() if t in have) / total


def fold_title(text: str) -> str:
    return _NON_WORD.sub("", text).casefold()


def duplicate_groups(titles: list[str], vectors: np.ndarray | None, threshold: float) -> np.ndarray:
    """Group labels: records with the same folded title, or cosine >= ``threshold``, share a group (transitively)."""
    n = len(titles)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first: dict[str, int] = {}
    for i, title in enumerate(titles):
        key = fold_title(title)
        if key:
            if key in first:
                union(i, first[key])
            else:
                first[key] = i
    if vectors is not None and n > 1:
        v = np.asarray(vectors, dtype=np.float32)
        sims = v @ v.T
        for i, j in zip(*np.nonzero(np.triu(sims >= threshold, k=1)), strict=True):
            union(int(i), int(j))
    roots = [find(i) for i in range(n)]
    return np.unique(roots, return_inverse=True)[1].reshape(-1)


def score_pairs(searcher: Searcher, selection: Selection, demands: dict[int, Demand], options: ShortlistOptions,
                progress: ProgressFn | None = None) -> list[Candidate]:
    """Candidate (demand, patent) pairs with the hybrid ranker's scores, and each demand's duplicate groups."""
    psnap = searcher.snapshot("patents")
    size = psnap.facets.size
    masks = [pick.patent_mask(size) for pick in selection.picks]
    out: list[Candidate] = []
    order = sorted(demands)
    for n, dpos in enumerate(order):
        if progress:
            progress("score", n, len(order))
        segs = [i for i, pick in enumerate(selection.picks) if dpos in pick.demands]
        mask = np.logical_or.reduce([masks[i] for i in segs])
        if not mask.any():
            continue
        results = searcher.search(psnap, demand_query(demands[dpos]), options.resolved_candidates(), mask, options.mode)
        mine: list[Candidate] = []
        titles: list[str] = []
        for r in results:
            ppos = psnap.bm25.position(r.id)
            if ppos is None:
                continue
            seg = next(i for i in segs if ppos in selection.picks[i].patents)
            assert isinstance(r.record, Patent)
            mine.append(Candidate(dpos, ppos, seg, r.score, r.retrievers,
                                  coverage=title_coverage(psnap, demands[dpos], r.record)))
            titles.append(r.record.title)
        vectors = None
        if psnap.dense is not None and mine:
            vectors = np.asarray(psnap.dense.vectors[np.asarray([c.patent_pos for c in mine])], dtype=np.float32)
        for c, g in zip(mine, duplicate_groups(titles, vectors, options.duplicate_similarity), strict=True):
            c.group = int(g)
        out += mine
    if progress:
        progress("score", len(order), len(order))
    return out


# --- holders, licence terms, explanations -----------------------------------------------------------------
def holder_name(patent: Patent) -> str | None:
    return patent.applicants[0] if patent.applicants else None


def holder_key(patent: Patent) -> str:
    """The first applicant, without case, punctuation or legal form; unknown: the patent is its own holder."""
    name = holder_name(patent)
    if name:
        key = _NON_WORD.sub("", _LEGAL_FORM.sub("", name)).casefold()
        if key:
            return key
    return f"patent:{patent.id}"


def compatible_modes(offer: list[str], demand: list[str]) -> list[str] | None:
    """The demand's cooperation modes that the offer also allows (transfer / licence / equity, matched across the
    two vocabularies); None when either side publishes none of these three."""
    offered = {MODE_FAMILY[m] for m in offer if m in MODE_FAMILY}
    wanted = [m for m in demand if m in MODE_FAMILY]
    if not offered or not wanted:  # nothing comparable published (e.g. only 其他 / 委托开发)
        return None
    return [m for m in wanted if MODE_FAMILY[m] in offered]


def _retriever_fields(retrievers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    bm25, dense, fused = retrievers.get("bm25", {}), retrievers.get("dense", {}), retrievers.get("fused", {})
    return {
        "bm25_rank": bm25.get("rank"), "bm25_score": "abstained" if "abstained" in bm25 else bm25.get("score"),
        "dense_rank": dense.get("rank"), "dense_score": dense.get("score"),
        "fusion": fused.get("method", ""),
    }


def _explanation_fields(ex: dict[str, Any] | None) -> dict[str, Any]:
    if not ex:
        return {"shared_terms": "", "snippet": "", "closest_sentence": "", "closest_similarity": None}
    terms = "; ".join(display_terms(ex.get("matched_terms", [])))
    snip = ""
    snippets = ex.get("snippets", {})
    for name in ("abstract", "description", "title", "claims"):
        if name in snippets:
            s = snippets[name]
            snip = snippet(s["text"], [tuple(h) for h in s["highlights"]]).marked()
            break
    cs = ex.get("closest_sentence") or {}
    return {"shared_terms": terms, "snippet": snip.replace("\n", " "), "closest_sentence": cs.get("text", ""),
            "closest_similarity": cs.get("similarity")}


def pair_fields(demand: Demand, patent: Patent, score: float, retrievers: dict[str, dict[str, Any]],
                explanation: dict[str, Any] | None) -> dict[str, Any]:
    """The columns every output row has for a (demand, patent) pair: who, why (explanation and scores), terms."""
    compatible = compatible_modes(patent.cooperation_modes, demand.cooperation_modes)
    return {
        "demand_id": demand.id, "demand_title": demand.title, "demand_industry": demand.industry or "",
        "enterprise": demand.enterprise or "", "demand_modes": "、".join(demand.cooperation_modes),
        "patent_id": patent.id, "patent_title": patent.title or patent.abstract[:80],
        "patent_abstract": excerpt(patent.abstract), "patent_language": patent.language,
        "patent_kind": patent.kind or "", "holder": holder_name(patent) or "",
        "applicant_type": patent.applicant_type, "legal_status": patent.legal_status, "ipc": list(patent.ipc[:5]),
        "application_date": _iso(patent.application_date), "publication_date": _iso(patent.publication_date),
        **{k: getattr(patent, k) for k in DERIVED if getattr(patent, k, None) is not None},
        "inferred": [f for f in getattr(patent, "inferred", []) if f in INFERRED_SHOWN],
        "score": round(score, 6), **_retriever_fields(retrievers), **_explanation_fields(explanation),
        "open_licence": patent.open_licence, "price": patent.price or "", "maturity": patent.maturity or "",
        "offer_modes": "、".join(patent.cooperation_modes),
        "compatible_modes": "" if compatible is None else ("、".join(compatible) or "无"),
        "explanation": explanation, "retrievers": retrievers,
    }


# derived numbers a record may carry (issue 15: inferred from the data), shown when present
DERIVED = ("patent_type", "granted", "filing_year")


# derived fields that are guesses (matcher/derive.py): the export says which of the shown ones were guessed
INFERRED_SHOWN = ("applicants", "applicant_type", "patent_type", "granted", "filing_year")


def excerpt(text: str, chars: int = 160) -> str:
    """The first ``chars`` characters of ``text`` on one line, cut at a sentence end when one is near."""
    flat = " ".join(text.split())
    if len(flat) <= chars:
        return flat
    cut = max(flat.rfind(p, chars // 2, chars) for p in "。；;. ")
    return flat[: cut + 1 if cut > 0 else chars].rstrip() + "…"


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def explain_records(searcher: Searcher, kind: Collection, query: str,
                    records: list[Patent | Demand]) -> dict[str, dict[str, Any] | None]:
    """The searcher's explanation of each already-scored record for ``query``: the query is analysed and encoded
    once (``Searcher.explainer``), no search is run again."""
    if not records:
        return {}
    explainer = searcher.explainer(searcher.snapshot(kind), query)
    return {r.id: explainer(r) for r in records}


# --- the whole run ----------------------------------------------------------------------------------------
@dataclass
class Shortlist:
    chain: Chain
    options: ShortlistOptions
    selection: Selection
    rows: list[dict[str, Any]]
    summary: dict[str, Any]

    def segment_rows(self, segment_id: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["segment_id"] == segment_id]

    def to_dict(self) -> dict[str, Any]:
        return {"chain": self.chain.name, "chain_en": self.chain.name_en, "source": self.chain.source,
                "options": {k: v for k, v in vars(self.options).items()}, "summary": self.summary,
                "rows": self.rows}


def build_shortlist(searcher: Searcher, chain: Chain, options: ShortlistOptions | None = None,
                    progress: ProgressFn | None = None, selection: Selection | None = None,
                    scorer: Scorer | None = None) -> Shortlist:
    """The shortlist of ``chain`` (of ``selection`` when given: records picked some other way, e.g. everything).
    ``scorer`` replaces ``score_pairs`` with a function of the same contract (``matcher.batch``: partitioned, on an
    engine, resumable)."""
    options = options or ShortlistOptions()
    caps = options.caps()  # refuses bad caps before any work
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if selection is None:
        selection = select_chain(searcher, chain, options.mode, progress)
    timings["select_s"] = time.perf_counter() - started

    psnap, dsnap = searcher.snapshot("patents"), searcher.snapshot("demands")
    dpos = sorted(selection.demand_positions)
    demand_records = searcher.store.get_many("demands", [dsnap.bm25.ids[p] for p in dpos])
    demands = {p: d for p in dpos if isinstance(d := demand_records.get(dsnap.bm25.ids[p]), Demand)}
    t = time.perf_counter()
    candidates = (scorer or score_pairs)(searcher, selection, demands, options, progress)
    timings["score_s"] = time.perf_counter() - t

    t = time.perf_counter()
    patent_ids = sorted({psnap.bm25.ids[c.patent_pos] for c in candidates})
    patents = {k: v for k, v in searcher.store.get_many("patents", patent_ids).items() if isinstance(v, Patent)}
    candidates = [c for c in candidates if psnap.bm25.ids[c.patent_pos] in patents and _similar_enough(c, options)]
    holders: dict[str, int] = {}
    edges = Edges.make(
        [c.demand_pos for c in candidates], [c.patent_pos for c in candidates], [c.score for c in candidates],
        [holders.setdefault(holder_key(patents[psnap.bm25.ids[c.patent_pos]]), len(holders)) for c in candidates],
        [c.group for c in candidates])
    chosen = solve(edges, caps, options.method)
    timings["assign_s"] = time.perf_counter() - t
    greedy_total = None
    if options.method == "exact":  # the baseline, for the report
        t = time.perf_counter()
        greedy_total = total(edges, solve_greedy(edges, caps))
        timings["greedy_baseline_s"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = _rows(searcher, selection, demands, patents, candidates, chosen, options, progress)
    timings["explain_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    summary = _summary(selection, candidates, rows, options, total(edges, chosen), greedy_total, timings)
    summary["mode"] = options.mode or searcher.config.mode
    return Shortlist(chain, options, selection, rows, summary)


def _similar_enough(c: Candidate, options: ShortlistOptions) -> bool:
    """The absolute evidence floor (until the ranker has a calibrated relevance): the dense cosine, and the demand
    title's words in the patent (or, across languages, a higher cosine)."""
    cosine = c.retrievers.get("dense", {}).get("score")
    if options.min_similarity is not None and (cosine is None or cosine < options.min_similarity):
        return False
    if options.min_coverage is None:
        return True
    if c.coverage is None:
        return cosine is not None and cosine >= options.cross_lingual_similarity
    return c.coverage >= options.min_coverage


def _rows(searcher: Searcher, selection: Selection, demands: dict[int, Demand], patents: dict[str, Patent],
          candidates: list[Candidate], chosen: np.ndarray, options: ShortlistOptions,
          progress: ProgressFn | None) -> list[dict[str, Any]]:
    psnap = searcher.snapshot("patents")
    by_demand: dict[int, list[Candidate]] = {}
    dups: dict[tuple[int, int], list[str]] = {}  # the near-duplicates left out, listed beside the chosen one
    for c, take in zip(candidates, chosen, strict=True):
        if take:
            by_demand.setdefault(c.demand_pos, []).append(c)
        else:
            dups.setdefault((c.demand_pos, c.group), []).append(psnap.bm25.ids[c.patent_pos])
    rows: list[dict[str, Any]] = []
    chain = selection.chain
    for n, (dpos, picked) in enumerate(sorted(by_demand.items())):
        if progress:
            progress("explain", n, len(by_demand))
        demand = demands[dpos]
        picked.sort(key=lambda c: (-c.score, c.patent_pos))
        explanations: dict[str, dict[str, Any] | None] = {}
        if options.explain:
            explanations = explain_records(searcher, "patents", demand_query(demand),
                                           [patents[psnap.bm25.ids[c.patent_pos]] for c in picked])
        for rank, c in enumerate(picked, 1):
            pid = psnap.bm25.ids[c.patent_pos]
            seg = chain.segments[c.segment]
            pick = selection.picks[c.segment]
            rows.append({
                "chain": chain.name, "segment_id": seg.id, "segment": seg.name, "segment_en": seg.label_en,
                "rank": rank,
                **pair_fields(demand, patents[pid], c.score, c.retrievers, explanations.get(pid)),
                "demand_selected_by": "; ".join(pick.demands.get(dpos, [])),
                "patent_selected_by": "; ".join(pick.patents.get(c.patent_pos, [])),
                "near_duplicates": "; ".join(d for d in dups.get((dpos, c.group), []) if d != pid),
                "title_coverage": None if c.coverage is None else round(c.coverage, 3),
            })
    if progress:
        progress("explain", len(by_demand), len(by_demand))
    order = {s.id: i for i, s in enumerate(chain.segments)}
    best = {}
    for r in rows:
        best[r["demand_id"]] = max(best.get(r["demand_id"], 0.0), r["score"])
    rows.sort(key=lambda r: (order[r["segment_id"]], -best[r["demand_id"]], r["demand_id"], r["rank"]))
    return rows


def _summary(selection: Selection, candidates: list[Candidate], rows: list[dict[str, Any]],
             options: ShortlistOptions, objective: float, greedy_total: float | None,
             timings: dict[str, float]) -> dict[str, Any]:
    segments = []
    for i, pick in enumerate(selection.picks):
        seg_rows = [r for r in rows if r["segment_id"] == pick.segment.id]
        segments.append({
            "id": pick.segment.id, "name": pick.segment.name, "name_en": pick.segment.label_en,
            "patents": len(pick.patents), "demands": len(pick.demands),
            "candidate_pairs": sum(1 for c in candidates if c.segment == i), "rows": len(seg_rows),
            "demands_served": len({r["demand_id"] for r in seg_rows}),
            "distinct_patents": len({r["patent_id"] for r in seg_rows}), "selected_by": pick.hits,
        })
    return {
        "patents_selected": len(selection.patent_positions), "demands_selected": len(selection.demand_positions),
        "candidate_pairs": len(candidates), "rows": len(rows),
        "demands_served": len({r["demand_id"] for r in rows}), "distinct_patents": len({r["patent_id"] for r in rows}),
        "method": options.method, "total_score": round(objective, 6),
        "greedy_total_score": None if greedy_total is None else round(greedy_total, 6),
        "holder_rule": "first applicant; a patent with no applicant is its own holder",
        "segments": segments, "warnings": selection.warnings,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
