"""A patent's page (every field, its licence terms, the demands it could serve) and a demand's page (its fields,
the patents that answer it). Both are deep links (``/patents/ID``, ``/demands/ID``); the matches are the JSON
API's ``/v1/match/patent`` and ``/v1/match/demand`` answers, explained."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.http import schemas as s
from api.web.backend import ApiError, Service, get_service, match_demand, match_patent, stored
from api.web.render import page_lang, render
from matcher.i18n import text
from matcher.records import fields_where
from matcher.search import NotIndexed

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]
MATCHES = 10
# What a record page lists: the fields a source gives, in the record field table's order (matcher.records.FIELDS).
PATENT_FIELDS = fields_where("patents", source=True)
DEMAND_FIELDS = fields_where("demands", source=True)


def _not_found(request: Request, kind: str, record_id: str) -> HTMLResponse:
    message = text(f"web.error.no_{kind}", page_lang(request), id=record_id)
    return render(request, "error.html", status=404, message=message)


def _matches(request: Request, call: Any) -> tuple[Any, str | None]:
    try:
        return call(), None
    except NotIndexed:
        return None, text("web.error.not_indexed", page_lang(request))
    except ApiError as exc:
        return None, exc.message


@router.get("/patents/{patent_id}", response_class=HTMLResponse)
def patent_page(request: Request, service: ServiceDep, patent_id: str) -> HTMLResponse:
    try:
        found = stored(service, "patents", patent_id, s.PatentRecord)
    except ApiError:
        return _not_found(request, "patent", patent_id)
    answer, problem = _matches(request, lambda: match_patent(service, s.MatchPatentRequest(
        patent_id=found.id, limit=MATCHES, explain=True)))
    return render(request, "patent.html", record=found.record, fields=PATENT_FIELDS, matches=answer,
                  problem=problem)


@router.get("/demands/{demand_id}", response_class=HTMLResponse)
def demand_page(request: Request, service: ServiceDep, demand_id: str) -> HTMLResponse:
    try:
        found = stored(service, "demands", demand_id, s.DemandRecord)
    except ApiError:
        return _not_found(request, "demand", demand_id)
    answer, problem = _matches(request, lambda: match_demand(service, s.MatchDemandRequest(
        demand_id=found.id, limit=MATCHES, explain=True)))
    return render(request, "demand.html", record=found.record, fields=DEMAND_FIELDS, matches=answer,
                  problem=problem)
