"""``/v1/search/patents`` (POST and GET) and ``/v1/search/demands``: free text with filters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import numpy as np
from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.http import schemas as s
from api.http.pages import demand_hits, ms, patent_hits, ranked_page
from api.http.security import read_router
from api.http.state import Service, ServiceDep
from matcher.config import Mode
from matcher.filter_report import report
from matcher.i18n import LANGS
from matcher.results import Result
from matcher.served import Snapshot
from matcher.store import Collection

read = read_router()


def _search(service: Service, kind: Collection, req: s.PatentSearchRequest | s.DemandSearchRequest,
            mask: Callable[[Snapshot], np.ndarray]) -> tuple[Snapshot, Mode, list[Result], s.Page,
                                                              dict[str, s.Explanation]]:
    snap = service.snapshot(kind)
    mode = req.mode or service.config.mode
    page, info, expl = ranked_page(service, snap, req.query, mask(snap), mode, req.offset, req.limit, req.explain,
                                   req.min_score)
    return snap, mode, page, info, expl


def _search_patents(service: Service, req: s.PatentSearchRequest) -> s.PatentSearchResponse:
    started = time.perf_counter()
    snap, mode, page, info, expl = _search(service, "patents", req, lambda sn: sn.facets.patent_mask(req.filters))
    short = None
    if len(page) < req.limit and (page or req.offset == 0):  # a short page, not a page past the end
        found = req.offset + len(page)
        facts = report(snap.facets, req.filters, found, req.offset + req.limit)
        short = s.FilterReport(**facts.to_dict(), messages={lang: facts.lines(lang) for lang in LANGS})
    return s.PatentSearchResponse(query=req.query, mode=mode, page=info, index=service.answered_by(snap.manifest),
                                  results=patent_hits(page, expl), took_ms=ms(started), filter_report=short)


@read.post("/search/patents", tags=["search"], summary="Search patents by free text, with filters")
def search_patents_post(service: ServiceDep, req: s.PatentSearchRequest) -> s.PatentSearchResponse:
    """Free text in Chinese or English; every filter of ``PatentFilters``; ``mode`` bm25, dense or hybrid; one page
    (``offset``/``limit``) of the ranked list; ``explain`` adds matched terms, snippets and the closest sentence."""
    return _search_patents(service, req)


@read.get("/search/patents", tags=["search"], summary="Search patents (query-string form)")
def search_patents_get(service: ServiceDep, params: Annotated[s.PatentSearchQuery, Query()]) -> s.PatentSearchResponse:
    """The same search as POST, with the filters as query parameters: ``?q=锂电池&ipc=H01M&ipc=H01G&limit=20``."""
    try:
        req = params.request()
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None
    return _search_patents(service, req)


@read.post("/search/demands", tags=["search"], summary="Search demands by free text, with filters")
def search_demands(service: ServiceDep, req: s.DemandSearchRequest) -> s.DemandSearchResponse:
    started = time.perf_counter()
    snap, mode, page, info, expl = _search(service, "demands", req, lambda sn: sn.facets.demand_mask(req.filters))
    return s.DemandSearchResponse(query=req.query, mode=mode, page=info, index=service.answered_by(snap.manifest),
                                  results=demand_hits(page, expl), took_ms=ms(started))
