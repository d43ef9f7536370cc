"""Demand matching: paste a need (or pick a stored demand) and get the patents that answer it, explained, with an
export. ``GET /match?need=…`` or ``?demand_id=…`` is a shareable view; the answer is ``/v1/match/demand``'s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import ValidationError

from api.http import schemas as s
from api.web.backend import ApiError, Service, get_service, match_demand
from api.web.downloads import Format
from api.web.render import page_lang, render
from api.web.search import hits_file
from matcher.i18n import text
from matcher.records import Demand
from matcher.search import NotIndexed

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]
MATCHES = 10
MAX_NEED = 20_000


def _request(need: str, demand_id: str, limit: int, explain: bool) -> s.MatchDemandRequest:
    if demand_id:
        return s.MatchDemandRequest(demand_id=demand_id, limit=limit, explain=explain)
    title, _, rest = need.strip().partition("\n")
    return s.MatchDemandRequest(demand=Demand(id="need", title=title[:1000], description=rest[:MAX_NEED]),
                                limit=limit, explain=explain)


@router.get("/match", response_class=HTMLResponse)
def match_page(request: Request, service: ServiceDep, need: str = "", demand_id: str = "") -> HTMLResponse:
    lang = page_lang(request)
    answer, problem = None, None
    need, demand_id = need[:MAX_NEED], demand_id.strip()[:128]
    if need.strip() or demand_id:
        try:
            answer = match_demand(service, _request(need, demand_id, MATCHES, True))
        except NotIndexed:
            problem = text("web.error.not_indexed", lang)
        except ApiError as exc:
            problem = exc.message
        except ValidationError as exc:
            problem = str(exc.errors()[0]["msg"])
    return render(request, "match.html", need=need, demand_id=demand_id, answer=answer, problem=problem,
                  params={"need": need or None, "demand_id": demand_id or None})


@router.get("/match/export.{fmt}")
def match_export(request: Request, service: ServiceDep, fmt: Format, need: str = "",
                 demand_id: str = "") -> FileResponse:
    lang = page_lang(request)
    answer = match_demand(service, _request(need[:MAX_NEED], demand_id.strip()[:128],
                                            min(service.candidates, s.MAX_LIMIT), False))
    info = [(text("web.match.need", lang), answer.demand.title), (text("web.export.link", lang), str(request.url))]
    return hits_file(answer.results, fmt, lang, info, "demand-match")
