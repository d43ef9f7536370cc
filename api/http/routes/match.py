"""``/v1/match/*``: patents for a demand, demands for a patent, enterprises for a portfolio."""

from __future__ import annotations

import time

from api.http import schemas as s
from api.http.errors import ApiError
from api.http.pages import demand_hits, ms, patent_hits, ranked_page
from api.http.security import read_router
from api.http.state import ServiceDep
from matcher.i18n import Message
from matcher.matching import UnknownRecord, match_portfolio, portfolio_ids
from matcher.records import Demand, Patent
from matcher.texts import demand_query, patent_query

read = read_router()


@read.post("/match/demand", tags=["match"], summary="Patents that answer a demand (stored or inline)")
def match_demand(service: ServiceDep, req: s.MatchDemandRequest) -> s.PatentMatchResponse:
    started = time.perf_counter()
    if (req.demand_id is None) == (req.demand is None):
        raise ApiError(422, "validation_error", Message("http.exactly_one", first="demand_id", second="demand"),
                       "demand_id")
    demand = req.demand
    if req.demand_id is not None:
        found = service.searcher.store.get("demands", req.demand_id)
        if not isinstance(found, Demand):
            raise ApiError(404, "not_found", Message("http.no_demand", id=repr(req.demand_id)), "demand_id")
        demand = found
    assert demand is not None
    snap = service.snapshot("patents")
    mode = req.mode or service.config.mode
    page, info, expl = ranked_page(service, snap, demand_query(demand), snap.facets.patent_mask(req.filters), mode,
                                   req.offset, req.limit, req.explain, req.min_score)
    return s.PatentMatchResponse(demand=demand, mode=mode, page=info, index=service.answered_by(snap.manifest),
                                 results=patent_hits(page, expl), took_ms=ms(started))


@read.post("/match/patent", tags=["match"], summary="Demands (enterprises) a patent could serve")
def match_patent(service: ServiceDep, req: s.MatchPatentRequest) -> s.DemandMatchResponse:
    started = time.perf_counter()
    patent = service.searcher.store.get("patents", req.patent_id)
    if not isinstance(patent, Patent):
        raise ApiError(404, "not_found", Message("http.no_patent", id=repr(req.patent_id)), "patent_id")
    snap = service.snapshot("demands")
    mode = req.mode or service.config.mode
    query = patent_query(patent, service.config.dense_text_chars)
    page, info, expl = ranked_page(service, snap, query, snap.facets.demand_mask(req.filters), mode, req.offset,
                                   req.limit, req.explain, req.min_score)
    return s.DemandMatchResponse(patent=patent, mode=mode, page=info, index=service.answered_by(snap.manifest),
                                 results=demand_hits(page, expl), took_ms=ms(started))


@read.post("/match/portfolio", tags=["match"], summary="Enterprises whose demands fit a portfolio")
def match_portfolio_endpoint(service: ServiceDep, req: s.PortfolioRequest) -> s.PortfolioResponse:
    """Each patent of the portfolio is matched to demands; demands are grouped per enterprise, which is scored by
    its best three (patent, demand) matches weighted 1, 1/2, 1/4. All matches use one snapshot."""
    started = time.perf_counter()
    if bool(req.patent_ids) == bool(req.applicant):
        raise ApiError(422, "validation_error", Message("http.exactly_one", first="patent_ids", second="applicant"),
                       "patent_ids")
    field = "patent_ids" if req.patent_ids else "applicant"
    try:
        ids = portfolio_ids(service.searcher, req.applicant, req.patent_ids or None)
    except UnknownRecord as exc:
        raise ApiError(404, "not_found", Message("http.unknown_records", detail=exc.as_message()), field) from None
    if len(ids) > service.settings.max_portfolio_patents:
        raise ApiError(422, "too_many_patents", Message("http.too_many_patents", count=len(ids),
                                                        limit=service.settings.max_portfolio_patents), field)
    pinned = service.pinned(("demands",))
    mode = req.mode or service.config.mode
    matches = match_portfolio(pinned, ids, req.offset + req.limit, req.per_patent, req.per_enterprise, req.filters,
                              mode)
    page = matches[req.offset:]
    enterprises = [s.EnterpriseMatch(rank=req.offset + i, **m.to_dict()) for i, m in enumerate(page, 1)]
    more = len(matches) == req.offset + req.limit
    return s.PortfolioResponse(patents=ids, mode=mode, offset=req.offset, limit=req.limit,
                               next_offset=req.offset + req.limit if more else None, enterprises=enterprises,
                               took_ms=ms(started))
