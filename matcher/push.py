"""Portfolio push campaigns: for an applicant's patents (or a list of ids), the enterprises and demands to approach,
each with the patents behind it, why they match, and the licence terms on both sides.

Built on ``matcher.matching``: ``portfolio_ids`` resolves the portfolio and ``match_portfolio`` ranks the
enterprises by fit (best three supporting fits weighted 1, 1/2, 1/4; ties broken by evidence, never by id),
drops pairs below ``min_fit``, and caps demands per enterprise and patents per demand at ``per_enterprise``.
With ``pair_model`` (opt-in), the pair model (``matcher.pair_model``, fitted on judged pairs) reads the pairs left:
its confidence becomes each pair's fit, and a pair below ``min_confidence`` is not pushed (on the blind round 4 of
``eval/datasets/shortlist_pairs``, NVIDIA's push to unseen demands, it kept 1 of 49 judged pairs: the good one).
This module only adds the rows: for each supporting (demand, patent) pair the searcher's explanation (the demand
was found with the patent's text as the query, so the shared terms, snippet and closest sentence are the
demand's; ``Searcher.explainer``, no second search) and the pair's licence terms
(``matcher.pairs.pair_fields``).
A demand with no enterprise (all demands of the bundled data) stands alone as its own "enterprise".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from matcher.config import Mode
from matcher.evidence import title_coverage
from matcher.filters import DemandFilters
from matcher.matching import EnterpriseMatch, PatentMatches, match_portfolio, portfolio_ids
from matcher.pair_model import shipped_judge
from matcher.pairs import explain_records, pair_fields
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.texts import patent_query

ProgressFn = Callable[[str, int, int], None]


@dataclass
class PushOptions:
    k: int = 20  # enterprises
    per_enterprise: int = 5  # demands per enterprise, and patents per demand
    per_patent: int = 20  # demands fetched per patent before grouping
    filters: DemandFilters = field(default_factory=DemandFilters)
    mode: Mode | None = None
    explain: bool = True
    # a pair whose fit (``matching.pair_fit``) is below its floor is not pushed (None: every pair): the calibrated
    # relevance with the learned fusion, else the dense cosine (0.45 with the shipped use-m3 model). Both floors
    # were set on eval/datasets/shortlist_pairs/ (its card says on which round).
    min_relevance: float | None = 0.25
    min_similarity: float | None = 0.45
    # a pair whose patent has less than this share of the demand title's informative words (as written, or across
    # languages through a dictionary gloss: ``matcher.evidence``) is not pushed; None: off
    min_coverage: float | None = 0.5
    min_topic_coverage: float = 0.3  # the patent title's words in the demand (same language: ``evidence``)
    # reciprocal check: a pair is pushed only if the demand, searching the whole patent corpus itself, finds the
    # patent in its own top ``reciprocal_k`` (``matching.reciprocal_ranks``); None: off. 5 was chosen on the judged
    # pairs of eval/datasets/shortlist_pairs/ (its card: which pairs each k keeps; eval/reciprocal_pairs.py)
    reciprocal_k: int | None = 5
    # the pair model (``matcher.pair_model``, fitted on the judged matchmaking pairs) reads each pair left, last: its
    # confidence becomes the pair's fit and a pair below ``min_confidence`` (None: the model's own floor) is not pushed
    pair_model: bool = False  # opt-in until a fresh blind round confirms it on push (issue 14)
    min_confidence: float | None = None


@dataclass
class Push:
    portfolio: list[str]
    label: str  # the applicant, or "N patents"
    options: PushOptions
    enterprises: list[EnterpriseMatch]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        options = {k: (v.model_dump(mode="json") if k == "filters" else v) for k, v in vars(self.options).items()}
        return {"portfolio": self.label, "patents": self.portfolio, "options": options, "summary": self.summary,
                "enterprises": [e.to_dict() for e in self.enterprises], "rows": self.rows}


def min_fit(searcher: Searcher, options: PushOptions) -> float | None:
    """The floor on ``pair_fit`` for this ranker: the relevance floor if it has a calibrated relevance, else the
    cosine floor."""
    mode = options.mode or searcher.config.mode
    calibrated = mode == "hybrid" and searcher.config.fusion == "learned"
    return options.min_relevance if calibrated else options.min_similarity


def build_push(searcher: Searcher, applicant: str | None = None, ids: list[str] | None = None,
               options: PushOptions | None = None, progress: ProgressFn | None = None,
               matches: PatentMatches | None = None) -> Push:
    """Enterprises and demands for a portfolio, with one explained row per supporting (demand, patent) pair.
    ``matches``: see ``match_portfolio`` (``matcher.batch`` passes one that runs on an engine)."""
    options = options or PushOptions()
    started = time.perf_counter()
    portfolio = portfolio_ids(searcher, applicant, ids)
    if progress:
        progress("match", 0, len(portfolio))
    enterprises = match_portfolio(searcher, portfolio, options.k, options.per_patent, options.per_enterprise,
                                  options.filters, options.mode, min_fit(searcher, options),
                                  (lambda done, total: progress("match", done, total)) if progress else None,
                                  options.min_coverage, options.min_topic_coverage, matches=matches,
                                  reciprocal_k=options.reciprocal_k,
                                  judge=shipped_judge(searcher.vector_cache()) if options.pair_model else None,
                                  min_confidence=options.min_confidence)
    matched_s = time.perf_counter() - started

    t = time.perf_counter()
    pairs = [(d["demand_id"], p["patent_id"]) for e in enterprises for d in e.demands for p in d["patents"]]
    demands = searcher.store.get_many("demands", sorted({d for d, _ in pairs}))
    patents = searcher.store.get_many("patents", sorted({p for _, p in pairs}))
    explanations = _explanations(searcher, pairs, patents, demands, progress) if options.explain else {}
    rows: list[dict[str, Any]] = []
    psnap = searcher.snapshot("patents")
    for rank, ent in enumerate(enterprises, 1):
        for d_rank, d in enumerate(ent.demands, 1):
            demand = demands[d["demand_id"]]
            assert isinstance(demand, Demand)
            for p in d["patents"]:
                patent = patents[p["patent_id"]]
                assert isinstance(patent, Patent)
                rows.append({
                    "enterprise_rank": rank, "enterprise_key": ent.enterprise,
                    "enterprise_score": round(ent.score, 6), "demand_rank": d_rank, "demand_score": d["score"],
                    "fit": p["score"], "title_coverage": _rounded(title_coverage(psnap, demand, patent)),
                    "reciprocal_rank": p.get("reciprocal_rank"),
                    **pair_fields(demand, patent, p["fused"], p["retrievers"],
                                  explanations.get((demand.id, patent.id))),
                })
    summary = {
        "portfolio": applicant or f"{len(portfolio)} patents", "patents": len(portfolio),
        "enterprises": len(enterprises), "demands": len({r["demand_id"] for r in rows}),
        "supporting_patents": len({r["patent_id"] for r in rows}), "rows": len(rows),
        "enterprise_rule": "a demand with no enterprise stands alone, keyed '(demand ID)'",
        "min_fit": min_fit(searcher, options), "min_coverage": options.min_coverage,
        "reciprocal_k": options.reciprocal_k,
        "min_confidence": _pair_floor(options),
        "timings": {"match_s": round(matched_s, 3), "explain_s": round(time.perf_counter() - t, 3),
                    "total_s": round(time.perf_counter() - started, 3)},
    }
    return Push(portfolio, applicant or f"{len(portfolio)} patents", options, enterprises, rows, summary)


def _pair_floor(options: PushOptions) -> float | None:
    if not options.pair_model:
        return None
    return shipped_judge().model.floor(options.min_confidence)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _explanations(searcher: Searcher, pairs: list[tuple[str, str]], patents: dict[str, Any],
                  demands: dict[str, Any], progress: ProgressFn | None) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Per patent, its query explained against exactly its supporting demands (no second search)."""
    by_patent: dict[str, list[str]] = {}
    for demand_id, patent_id in pairs:
        by_patent.setdefault(patent_id, []).append(demand_id)
    out: dict[tuple[str, str], dict[str, Any] | None] = {}
    for n, (patent_id, demand_ids) in enumerate(sorted(by_patent.items())):
        if progress:
            progress("explain", n, len(by_patent))
        if patent_id not in patents:
            continue
        query = patent_query(patents[patent_id], searcher.config.dense_text_chars)
        records = [demands[d] for d in demand_ids if d in demands]
        for demand_id, ex in explain_records(searcher, "demands", query, records).items():
            out[(demand_id, patent_id)] = ex
    if progress:
        progress("explain", len(by_patent), len(by_patent))
    return out
