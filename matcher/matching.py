"""Licensing matches in both directions: a demand -> patents, a patent -> demands, a portfolio -> enterprises.

A demand is matched with its title and description as the query. A patent is matched with the same text its
dense vector is made from (title, abstract, first claim). A portfolio is every patent of an applicant, or a
list of ids; each patent is matched to demands, and the demands are grouped per enterprise (a demand with no
enterprise stands alone). An enterprise's score is the sum of its best three supporting (patent, demand)
fits weighted 1, 1/2, 1/4: one excellent match outranks several weak ones, but breadth still counts. A fit is
absolute (``pair_fit``), so a portfolio's enterprises do not all tie at the top as normalised scores would.
A push can also ask for the reciprocal check (``reciprocal_k``): a pair stands only if the demand, searching the
whole patent corpus itself, finds the patent in its own top k (``reciprocal_ranks``); a false friend found from
the patent's side (纱线 ← GPU *threads*) rarely is, since the demand's own search finds same-topic patents first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from matcher.config import Mode
from matcher.evidence import answers_a_need, title_coverage, topic_coverage
from matcher.filters import DemandFilters, PatentFilters
from matcher.i18n import LocalisedError
from matcher.pair_model import PairJudge
from matcher.records import Demand, Patent
from matcher.results import Result
from matcher.search import Searcher
from matcher.texts import demand_query, patent_query

SUPPORT_WEIGHTS = (1.0, 0.5, 0.25)
PatentMatches = Callable[[list[str]], Iterable[tuple[Patent, list[Result]]]]  # patent ids -> match_patent's answers


class UnknownRecord(LocalisedError, LookupError):
    """An id (or an applicant) that names no stored record."""


def match_demand(searcher: Searcher, demand: str | Demand, k: int = 10, filters: PatentFilters | None = None,
                 mode: Mode | None = None, explain: bool = False) -> tuple[Demand, list[Result]]:
    """Patents that answer a demand (given by id, or inline as a ``Demand``)."""
    if isinstance(demand, str):
        found = searcher.store.get("demands", demand)
        if not isinstance(found, Demand):
            raise UnknownRecord("search.unknown_demand", id=demand)
        demand = found
    return demand, searcher.search_patents(demand_query(demand), k, filters, mode, explain)


def match_patent(searcher: Searcher, patent_id: str, k: int = 10, filters: DemandFilters | None = None,
                 mode: Mode | None = None, explain: bool = False) -> tuple[Patent, list[Result]]:
    """Demands (enterprises) that a patent could serve."""
    patent = searcher.store.get("patents", patent_id)
    if not isinstance(patent, Patent):
        raise UnknownRecord("search.unknown_patent", id=patent_id)
    query = patent_query(patent, searcher.config.dense_text_chars)
    return patent, searcher.search_demands(query, k, filters, mode, explain)


UNNAMED = "(demand "  # how enterprise_key starts for a demand that names no enterprise


def enterprise_key(demand: Demand) -> str:
    """Who a demand's matches are for: its enterprise, or the demand itself when none is named, keyed
    ``(demand ID)``."""
    return demand.enterprise or f"{UNNAMED}{demand.id})"


@dataclass
class EnterpriseMatch:
    enterprise: str  # ``enterprise_key``: the name, or ``(demand ID)`` for a demand that names none
    score: float
    demands: list[dict[str, Any]] = field(default_factory=list)
    evidence: tuple[float, ...] = ()  # tie-breakers: best fit, supporting pairs, best fused score

    @property
    def named(self) -> bool:
        """Whether the data names the enterprise (else the key stands for one demand: ``enterprise_key``)."""
        return not self.enterprise.startswith(UNNAMED)

    def to_dict(self) -> dict[str, Any]:
        return {"enterprise": self.enterprise, "score": round(self.score, 6), "demands": self.demands}


def portfolio_ids(searcher: Searcher, applicant: str | None = None, ids: list[str] | None = None) -> list[str]:
    """The patents of a portfolio: the given ids (resolved, unknown ones refused) or every patent of an applicant."""
    if ids:
        resolved = []
        for doc_id in ids:
            canonical = searcher.store.resolve("patents", doc_id)
            if canonical is None:
                raise UnknownRecord("search.unknown_patent", id=doc_id)
            resolved.append(canonical)
        return list(dict.fromkeys(resolved))
    if applicant:
        found = searcher.store.ids_with_value("patents", "applicants", applicant)
        if not found:
            raise UnknownRecord("search.unknown_applicant", applicant=applicant)
        return found
    raise ValueError("a portfolio needs an applicant or a list of patent ids")


def pair_fit(result: Result) -> float:
    """How well a found record answers the query, on a scale that means the same for every query: the ranker's
    calibrated relevance when it has one (the learned fusion), else the dense cosine when the dense model scored
    it (hybrid and dense modes), else the raw BM25 score (bm25 mode). A normalised fused score cannot serve:
    convex fusion normalises each query's candidates, so every query's best is ~1. A hybrid result the dense
    retriever did not reach has fit 0."""
    if result.relevance is not None:
        return float(result.relevance)
    dense = result.retrievers.get("dense")
    if dense is not None:
        return float(dense.get("score") or 0.0)
    return float(result.score)


def match_portfolio(searcher: Searcher, patent_ids: list[str], k: int = 10, per_patent: int = 20,
                    per_enterprise: int = 5, filters: DemandFilters | None = None,
                    mode: Mode | None = None, min_fit: float | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    min_coverage: float | None = None, min_topic: float = 0.0,
                    matches: PatentMatches | None = None,
                    reciprocal_k: int | None = None, judge: PairJudge | None = None,
                    min_confidence: float | None = None) -> list[EnterpriseMatch]:
    """Enterprises ranked for a portfolio, each with its demands and the patents that support each demand.

    Scores are fits (``pair_fit``), so they compare across patents and enterprises; a pair below ``min_fit``, or
    whose patent has less than ``min_coverage`` of the demand title's words (``matcher.evidence.title_coverage``:
    as written or, across languages, through a dictionary gloss; or, in one language, less than ``min_topic`` of
    the patent title's words in the demand: ``topic_coverage``), is not support at all, nor is a design patent
    (``evidence.answers_a_need``). Enterprises with equal
    scores are ordered by evidence (their best fit, then how many
    pairs support them, then the best fused score), and only then by name. ``progress(done, total)`` is called
    after each patent's search. ``matches(patent_ids)``, when given, yields ``match_patent``'s answer for each patent
    in order (``matcher.batch`` computes them in partitions on an engine); the default calls it here.
    ``reciprocal_k``: keep only pairs whose patent is in the demand's own top ``reciprocal_k`` patents (run after
    the other floors, one search per remaining demand); each kept patent carries its ``reciprocal_rank``.
    ``judge``: the pair model (``matcher.pair_model``) reads every pair left, last; its confidence becomes the
    pair's fit, and a pair below ``min_confidence`` (None: the model's own floor) is dropped."""
    support: dict[str, list[tuple[float, float, str, Result]]] = defaultdict(list)  # demand -> (fit, fused, ...)
    titles: dict[str, str] = {}
    patents: dict[str, Patent] = {}
    psnap = searcher.snapshot("patents")
    found = matches(patent_ids) if matches is not None else \
        (match_patent(searcher, patent_id, per_patent, filters, mode) for patent_id in patent_ids)
    for n, (patent_id, (patent, results)) in enumerate(zip(patent_ids, found, strict=True), 1):
        titles[patent_id] = patent.title or patent.abstract[:60]
        patents[patent_id] = patent
        for r in results:
            fit = pair_fit(r)
            if not answers_a_need(patent) or (min_fit is not None and fit < min_fit):
                continue
            if min_coverage is not None:
                assert isinstance(r.record, Demand)
                coverage = title_coverage(psnap, r.record, patent)
                topic = topic_coverage(psnap, r.record, patent)
                if (coverage is not None and coverage < min_coverage) or (topic is not None and topic < min_topic):
                    continue
            support[r.id].append((fit, r.score, patent_id, r))
        if progress:
            progress(n, len(patent_ids))
    ranks: dict[str, dict[str, int]] = {}
    if reciprocal_k is not None:
        ranks = reciprocal_ranks(searcher, {d: rows[0][3].record for d, rows in support.items()}, reciprocal_k, mode)
        support = {d: kept for d, rows in support.items() if (kept := [r for r in rows if r[2] in ranks[d]])}
    if judge is not None:
        support = _judged_support(support, patents, judge, min_confidence)
    by_enterprise: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for demand_id, rows in support.items():
        rows.sort(key=lambda row: (-row[0], -row[1], row[2]))
        demand = rows[0][3].record
        assert isinstance(demand, Demand)
        by_enterprise[enterprise_key(demand)].append({
            "demand_id": demand_id, "title": demand.title, "score": round(rows[0][0], 6),
            "patents": [{"patent_id": pid, "title": titles[pid], "score": round(fit, 6), "fused": round(fused, 6),
                         "retrievers": r.retrievers,
                         **({"reciprocal_rank": ranks[demand_id][pid]} if ranks else {})}
                        for fit, fused, pid, r in rows[:per_enterprise]],
        })
    matches = []
    for enterprise, demands in by_enterprise.items():
        demands.sort(key=lambda d: (-d["score"], -d["patents"][0]["fused"], d["demand_id"]))
        pairs = [p for d in demands for p in d["patents"]]
        scores = sorted((p["score"] for p in pairs), reverse=True)
        total = sum(w * s for w, s in zip(SUPPORT_WEIGHTS, scores, strict=False))
        evidence = (scores[0], len(pairs), max(p["fused"] for p in pairs))
        matches.append(EnterpriseMatch(enterprise, total, demands[:per_enterprise], evidence))
    matches.sort(key=lambda m: (-round(m.score, 9), *(-e for e in m.evidence), m.enterprise))
    return matches[:k]


Support = dict[str, list[tuple[float, float, str, Result]]]  # demand -> (fit, fused score, patent id, result)


def _judged_support(support: Support, patents: dict[str, Patent], judge: PairJudge,
                    min_confidence: float | None) -> Support:
    """``support`` with each pair's fit replaced by its pair confidence; pairs below the floor dropped."""
    flat = [(d, row) for d, rows in support.items() for row in rows]
    pairs = [(row[3].record, patents[row[2]]) for _, row in flat]
    out: Support = defaultdict(list)
    for i, confidence in judge.passing(pairs, min_confidence):  # type: ignore[arg-type]
        d, (_, fused, pid, r) = flat[i]
        out[d].append((confidence, fused, pid, r))
    return dict(out)


def reciprocal_ranks(searcher: Searcher, demands: dict[str, Any], k: int,
                     mode: Mode | None = None) -> dict[str, dict[str, int]]:
    """For each demand, the rank (1-based) of each patent in its own top ``k`` when it searches the whole patent
    corpus with its title and description (``match_demand``'s query, no filters)."""
    out: dict[str, dict[str, int]] = {}
    for demand_id, demand in sorted(demands.items()):
        assert isinstance(demand, Demand)
        results = searcher.search_patents(demand_query(demand), k, None, mode)
        out[demand_id] = {r.id: rank for rank, r in enumerate(results, 1)}
    return out
