"""Matchmaking shortlists for an industrial-chain event: select, score, floor, assign, explain.

1. **Select** (``matcher.chain_segments.select_chain``): each segment's patents and demands, with the reasons.
2. **Score** (``score_pairs``). Each selected demand is matched, as ``match_demand`` does (title + description as
   the query), against the patents of every segment it belongs to (one search over their union), through
   ``Searcher.search`` restricted by a mask to those patents, ``candidates`` deep. The pair score is the ranker's
   calibrated relevance (the learned fusion's estimate, in [0, 1], that the patent is relevant: it means the same
   for every demand); with a ranker that has none, its fused score (relative to the demand: convex fusion
   normalises each retriever per query, so 1.0 is the demand's best candidate).
3. **Floor** (``ShortlistOptions.passes``): absolute, so a weak pair gets no row and a demand with no good
   candidate gets none at all ("no match" is better than a bad row): the relevance (``min_relevance``; or, with a
   ranker without one, the dense cosine ``min_similarity``), and the demand title's words in the patent, as
   written or, across languages, through a dictionary gloss (``matcher.evidence.title_coverage``, ``min_coverage``),
   so a cross-language embedding false friend (纱线 <- GPU threads) has no evidence. Last, the pair model
   (``matcher.pair_model``, fitted on the judged pairs) reads each pair left: its confidence becomes the pair score
   and a pair below ``min_confidence`` gets no row.
4. **Assign** (``matcher.assignment``): the exact maximum-total-score assignment under the per-demand,
   per-patent and per-holder caps, the minimum score and diversity. Diversity: per demand, the candidates are
   grouped into near-duplicates (same normalised title, or dense cosine >= ``duplicate_similarity``, joined
   transitively) and a shortlist takes at most one of each group; the others are listed beside it. Grouping
   (not MMR) keeps the problem a flow problem, so the optimum stays exact with every constraint.
   The holder is a patent's first applicant. **When a patent has no applicant (all Chinese records of the
   bundled data), it is its own holder**, so the holder cap then acts as a per-patent cap.
5. **Explain**: each assigned pair gets the searcher's explanation (shared terms with highlighted snippets,
   the closest sentence) next to every retriever's rank and score and the fused score, and the licence terms
   of both sides (``matcher.pairs.pair_fields``).

The floors were set on the judged pairs of ``eval/datasets/shortlist_pairs/`` (its card says which round tuned them
and which one, judged afterwards, reports them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from matcher.assignment import Caps, Edges, Method, solve, solve_greedy, total
from matcher.chain_segments import ProgressFn, Selection, select_chain
from matcher.chains import Chain
from matcher.config import Mode
from matcher.evidence import answers_a_need, title_coverage, topic_coverage
from matcher.pair_model import shipped_judge
from matcher.pairs import explain_records, holder_key, pair_fields
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.store import COLLECTIONS
from matcher.texts import demand_query

# (searcher, selection, demands by position, options, progress) -> candidates: ``score_pairs`` or one like it
Scorer = Callable[..., "list[Candidate]"]
_NON_WORD = re.compile(r"[\W_]+")


@dataclass
class ShortlistOptions:
    per_demand: int = 5
    per_patent: int = 3
    per_holder: int | None = None
    min_score: float = 0.0  # on the pair score (the calibrated relevance, or the fused score without one)
    # on the calibrated relevance (absolute, comparable across demands); None: off. Ignored by a ranker without one.
    min_relevance: float | None = 0.25
    # on the dense cosine (absolute), for a ranker without a calibrated relevance; a pair dense did not retrieve
    # fails it. None: off
    min_similarity: float | None = 0.40
    # the idf-weighted share of the demand title's informative words the patent's title/abstract also has, as
    # written or across languages through a dictionary gloss (``matcher.evidence``); None: off
    min_coverage: float | None = 0.5
    # the share of the patent title's informative words the demand's title/description has (same language only:
    # ``evidence.topic_coverage``); None: off
    min_topic_coverage: float | None = 0.3
    candidates: int | None = None  # patents scored per demand; default max(4 x per_demand, 20)
    duplicate_similarity: float = 0.95
    method: Method = "exact"
    mode: Mode | None = None  # the ranker's (default: the workspace's ranker config)
    explain: bool = True
    # the pair model (``matcher.pair_model``, fitted on the judged matchmaking pairs) reads each pair that passes the
    # other floors: its confidence becomes the pair score, and a pair below ``min_confidence`` (None: the model's own
    # floor) gets no row
    # opt-in: on the blind round 6 the model alone, without the lexical floors, let in false friends (24% bad against
    # 0%), so it adds to the floors and does not replace them (eval/datasets/shortlist_pairs/CARD.md)
    pair_model: bool = False
    min_confidence: float | None = None
    # the learned ranker's title channel (``matcher.features.TITLE_CHANNEL``) in the pair scores; off: the patents
    # are scored by its model fitted without it (``LearnedRanker.without_titles``). Off by default: on the blind
    # round 7 the title channel's relevance admitted 9 more demands at the 0.25 floor, mostly with bad rows
    # (shortlist top rows 11 bad of 80 against 3 of 71; eval/datasets/shortlist_pairs/CARD.md)
    title_channel: bool = False

    def passes(self, c: Candidate) -> bool:
        """The absolute floors: relevance (or, without one, the dense cosine) and the title's words."""
        if c.relevance is not None:
            if self.min_relevance is not None and c.relevance < self.min_relevance:
                return False
        elif self.min_similarity is not None:
            cosine = c.retrievers.get("dense", {}).get("score")
            if cosine is None or cosine < self.min_similarity:
                return False
        if self.min_topic_coverage is not None and c.topic is not None and c.topic < self.min_topic_coverage:
            return False
        return self.min_coverage is None or c.coverage is None or c.coverage >= self.min_coverage

    def resolved_candidates(self) -> int:
        return self.candidates or max(4 * self.per_demand, 20)

    def caps(self) -> Caps:
        return Caps(self.per_demand, self.per_patent, self.per_holder, self.min_score)




# --- scoring and diversity --------------------------------------------------------------------------------
@dataclass
class Candidate:
    demand_pos: int
    patent_pos: int
    segment: int  # index into the chain's segments
    score: float
    retrievers: dict[str, dict[str, Any]]
    group: int = 0  # near-duplicate group among this demand's candidates
    coverage: float | None = None  # ``evidence.title_coverage``; None when the title has no informative word
    relevance: float | None = None  # the ranker's calibrated relevance, when it has one
    topic: float | None = None  # ``evidence.topic_coverage``
    confidence: float | None = None  # the pair model's (``matcher.pair_model``), when it read the pair


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


def ranking_view(searcher: Searcher, options: ShortlistOptions) -> Searcher:
    """``searcher``, or without ``options.title_channel`` a view of it whose snapshots have no title vectors (its
    searches, of the segments' demands and patents and of each demand's patents, rank by the learned ranker's model
    fitted without them)."""
    if options.title_channel:
        return searcher
    titled = {kind: snap for kind in COLLECTIONS if (snap := searcher.snapshot(kind)).titles is not None}
    return searcher.over({kind: replace(snap, titles=None) for kind, snap in titled.items()}) if titled else searcher


def score_pairs(searcher: Searcher, selection: Selection, demands: dict[int, Demand], options: ShortlistOptions,
                progress: ProgressFn | None = None) -> list[Candidate]:
    """Candidate (demand, patent) pairs with the hybrid ranker's scores, and each demand's duplicate groups."""
    searcher = ranking_view(searcher, options)  # a partition's worker comes with its own searcher
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
            score = r.relevance if r.relevance is not None else r.score
            mine.append(Candidate(dpos, ppos, seg, score, r.retrievers,
                                  coverage=title_coverage(psnap, demands[dpos], r.record), relevance=r.relevance,
                                  topic=topic_coverage(psnap, demands[dpos], r.record)))
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


def judged(searcher: Searcher, candidates: list[Candidate], demands: dict[int, Demand], patents: list[Patent],
           min_confidence: float | None) -> list[Candidate]:
    """The candidates whose pair confidence (``matcher.pair_model``) is at or above the floor (None: the model's),
    each scored by it."""
    pairs = [(demands[c.demand_pos], p) for c, p in zip(candidates, patents, strict=True)]
    out = []
    for i, confidence in shipped_judge(searcher.vector_cache()).passing(pairs, min_confidence):
        c = candidates[i]
        c.confidence = c.score = confidence
        out.append(c)
    return out


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
    searcher = ranking_view(searcher, options)  # the segments' searches and the pairs' scores alike
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
    candidates = [c for c in candidates if (p := patents.get(psnap.bm25.ids[c.patent_pos])) is not None
                  and answers_a_need(p) and options.passes(c)]
    if options.pair_model:
        candidates = judged(searcher, candidates, demands, [patents[psnap.bm25.ids[c.patent_pos]] for c in candidates],
                            options.min_confidence)
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
                "relevance": None if c.relevance is None else round(c.relevance, 6),
                "topic_coverage": None if c.topic is None else round(c.topic, 3),
                "pair_confidence": None if c.confidence is None else round(c.confidence, 6),
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
        "segments": segments, "warnings": [w.text("en") for w in selection.warnings],
        "warning_messages": [w.to_dict() for w in selection.warnings],  # the same, to say in the reader's language
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
