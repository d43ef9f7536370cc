"""Licensing matches in both directions: a demand -> patents, a patent -> demands, a portfolio -> enterprises.

A demand is matched with its title and description as the query. A patent is matched with the same text its
dense vector is made from (title, abstract, first claim). A portfolio is every patent of an applicant, or a
list of ids; each patent is matched to demands, and the demands are grouped per enterprise (a demand with no
enterprise stands alone). An enterprise's score is the sum of its best three supporting (patent, demand)
scores weighted 1, 1/2, 1/4: one excellent match outranks several weak ones, but breadth still counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from matcher.config import Mode
from matcher.filters import DemandFilters, PatentFilters
from matcher.indexing import dense_text
from matcher.records import Demand, Patent
from matcher.search import Result, Searcher

SUPPORT_WEIGHTS = (1.0, 0.5, 0.25)


class UnknownRecord(LookupError):
    pass


def demand_query(demand: Demand) -> str:
    return "\n".join(p for p in (demand.title, demand.description) if p)


def patent_query(patent: Patent, max_chars: int = 512) -> str:
    return dense_text(patent, max_chars)


def match_demand(searcher: Searcher, demand: str | Demand, k: int = 10, filters: PatentFilters | None = None,
                 mode: Mode | None = None, explain: bool = False) -> tuple[Demand, list[Result]]:
    """Patents that answer a demand (given by id, or inline as a ``Demand``)."""
    if isinstance(demand, str):
        found = searcher.store.get("demands", demand)
        if not isinstance(found, Demand):
            raise UnknownRecord(f"no demand with id {demand!r}")
        demand = found
    return demand, searcher.search_patents(demand_query(demand), k, filters, mode, explain)


def match_patent(searcher: Searcher, patent_id: str, k: int = 10, filters: DemandFilters | None = None,
                 mode: Mode | None = None, explain: bool = False) -> tuple[Patent, list[Result]]:
    """Demands (enterprises) that a patent could serve."""
    patent = searcher.store.get("patents", patent_id)
    if not isinstance(patent, Patent):
        raise UnknownRecord(f"no patent with id {patent_id!r}")
    query = patent_query(patent, searcher.config.dense_text_chars)
    return patent, searcher.search_demands(query, k, filters, mode, explain)


@dataclass
class EnterpriseMatch:
    enterprise: str
    score: float
    demands: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"enterprise": self.enterprise, "score": round(self.score, 6), "demands": self.demands}


def portfolio_ids(searcher: Searcher, applicant: str | None = None, ids: list[str] | None = None) -> list[str]:
    """The patents of a portfolio: the given ids (resolved, unknown ones refused) or every patent of an applicant."""
    if ids:
        resolved = []
        for doc_id in ids:
            canonical = searcher.store.resolve("patents", doc_id)
            if canonical is None:
                raise UnknownRecord(f"no patent with id {doc_id!r}")
            resolved.append(canonical)
        return list(dict.fromkeys(resolved))
    if applicant:
        found = searcher.store.ids_with_value("patents", "applicants", applicant)
        if not found:
            raise UnknownRecord(f"no patent has an applicant matching {applicant!r}")
        return found
    raise ValueError("a portfolio needs an applicant or a list of patent ids")


def match_portfolio(searcher: Searcher, patent_ids: list[str], k: int = 10, per_patent: int = 20,
                    per_enterprise: int = 5, filters: DemandFilters | None = None,
                    mode: Mode | None = None) -> list[EnterpriseMatch]:
    """Enterprises ranked for a portfolio, each with its demands and the patents that support each demand."""
    support: dict[str, list[tuple[float, str, Result]]] = defaultdict(list)  # demand id -> (score, patent, result)
    titles: dict[str, str] = {}
    for patent_id in patent_ids:
        patent, results = match_patent(searcher, patent_id, per_patent, filters, mode)
        titles[patent_id] = patent.title or patent.abstract[:60]
        for r in results:
            support[r.id].append((r.score, patent_id, r))
    by_enterprise: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for demand_id, rows in support.items():
        rows.sort(key=lambda row: (-row[0], row[1]))
        demand = rows[0][2].record
        assert isinstance(demand, Demand)
        key = demand.enterprise or f"(demand {demand_id})"
        by_enterprise[key].append({
            "demand_id": demand_id, "title": demand.title, "score": round(rows[0][0], 6),
            "patents": [{"patent_id": pid, "title": titles[pid], "score": round(s, 6), "retrievers": r.retrievers}
                        for s, pid, r in rows[:per_enterprise]],
        })
    matches = []
    for enterprise, demands in by_enterprise.items():
        demands.sort(key=lambda d: (-d["score"], d["demand_id"]))
        scores = sorted((p["score"] for d in demands for p in d["patents"]), reverse=True)
        total = sum(w * s for w, s in zip(SUPPORT_WEIGHTS, scores, strict=False))
        matches.append(EnterpriseMatch(enterprise, total, demands[:per_enterprise]))
    matches.sort(key=lambda m: (-m.score, m.enterprise))
    return matches[:k]
