"""The search page (``GET /``) and its export: one box, filters with counts, explained results, paging, sorting.

The query string is the JSON API's (``GET /v1/search/patents``): ``q``, ``ipc``, ``applicant_type``,
``legal_status``, ``open_licence_only``, ``maturity``, ``kind``, ``language``, ``date_from``, ``date_to``,
``applicant``; plus ``page``, ``sort`` (``relevance`` or ``date``) and ``lang``. Every view is a shareable URL
rendered on the server. When the filters leave nothing, the page says which filter emptied the list and how many
records each filter keeps alone (``matcher.filter_report``, as the CLI prints it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from api.http import schemas as s
from api.web.backend import ApiError, Service, get_service, search_patents
from api.web.downloads import Format, table_download
from api.web.render import page_lang, render
from matcher.export import Table
from matcher.filter_report import report
from matcher.i18n import Lang, text
from matcher.pairs import excerpt, holder_name
from matcher.records import Patent
from matcher.search import NotIndexed

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]
PAGE_SIZE = 10
LIST_FIELDS = ("applicant_type", "legal_status", "maturity", "kind", "language")
# The filters the form can set (an empty result is explained only when one is set).
FILTER_ORDER = ("ipc", "applicant_type", "applicant", "legal_status", "open_licence_only", "maturity", "kind",
                "language", "date_from", "date_to")
Sort = Literal["relevance", "date"]


@dataclass
class SearchForm:
    """The search as the query string gave it: the values to show again, and the API request they make."""

    q: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    page: int = 1
    sort: Sort = "relevance"
    errors: dict[str, str] = field(default_factory=dict)
    query: s.PatentSearchQuery | None = None

    @classmethod
    def parse(cls, params: QueryParams) -> SearchForm:
        form = cls(q=params.get("q", "").strip())
        values: dict[str, Any] = {name: [v for v in params.getlist(name) if v.strip()] for name in LIST_FIELDS}
        values["ipc"] = [p for p in re.split(r"[\s,，;；]+", " ".join(params.getlist("ipc"))) if p]
        for name in ("applicant", "date_from", "date_to"):
            values[name] = params.get(name, "").strip() or None
        values["open_licence_only"] = params.get("open_licence_only", "") in ("true", "on", "1")
        form.values = values
        form.sort = "date" if params.get("sort") == "date" else "relevance"
        try:
            form.page = max(1, min(int(params.get("page", "1")), 1000))
        except ValueError:
            form.page = 1
        if not form.q:
            return form
        try:
            form.query = s.PatentSearchQuery.model_validate({"q": form.q, **values, "limit": PAGE_SIZE,
                                                             "offset": (form.page - 1) * PAGE_SIZE})
            form.query.request()  # the filters are checked as the API checks them
        except ValidationError as exc:
            form.query = None
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else "q"
                form.errors.setdefault(name, str(err["msg"]).removeprefix("Value error, "))
        return form

    def params(self, **override: Any) -> dict[str, Any]:
        """The query string of this view (``override`` changes a value; ``page=None`` drops it)."""
        out: dict[str, Any] = {"q": self.q}
        for name, value in self.values.items():
            if name == "ipc":
                value = " ".join(value)
            out[name] = "true" if value is True else (None if value is False else value)
        out["sort"] = None if self.sort == "relevance" else self.sort
        out["page"] = self.page if self.page > 1 else None
        out.update(override)
        return out

    def active_filters(self) -> list[str]:
        return [name for name in FILTER_ORDER if self.values.get(name)]


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def _date_key(patent: Patent) -> int:
    day: date | None = patent.application_date or patent.publication_date
    return -day.toordinal() if day else 1


def run_search(service: Service, form: SearchForm) -> tuple[s.PatentSearchResponse, int | None]:
    """One page of results as ``GET /v1/search/patents`` answers it, explained; (response, total if known).
    Sorting by date reorders the whole ranked window (the top ``window`` by relevance), then explains one page."""
    assert form.query is not None
    req = form.query.request()
    if form.sort == "relevance":
        response = search_patents(service, req.model_copy(update={"explain": True}))
        return response, None
    window = min(service.candidates, s.MAX_LIMIT)
    everything = search_patents(service, req.model_copy(update={"offset": 0, "limit": window, "explain": False}))
    ordered = sorted(everything.results, key=lambda h: (_date_key(h.record), h.rank))
    page = ordered[req.offset:req.offset + req.limit]
    if page:
        explainer = service.searcher.explainer(service.snapshot("patents"), req.query)
        page = [h.model_copy(update={"explanation": s.Explanation.model_validate(explainer(h.record))}) for h in page]
    more = req.offset + req.limit < len(ordered)
    info = s.Page(offset=req.offset, limit=req.limit, window=window,
                  next_offset=req.offset + req.limit if more else None)
    return everything.model_copy(update={"results": page, "page": info}), len(ordered)


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, service: ServiceDep) -> HTMLResponse:
    form = SearchForm.parse(request.query_params)
    context: dict[str, Any] = {"form": form, "facets": {}, "response": None, "empty": None, "total": None,
                               "problem": None}
    try:
        context["facets"] = service.facets("patents", 25)[1]
        if form.query is not None and not form.errors:
            response, total = run_search(service, form)
            context["response"], context["total"] = response, total
            if not response.results and form.page == 1 and form.active_filters():
                why = report(service.snapshot("patents").facets, form.query.filters(), 0, PAGE_SIZE)
                context["empty"] = why.lines(page_lang(request))
    except NotIndexed:
        context["problem"] = text("web.error.not_indexed", page_lang(request))
    except ApiError as exc:
        context["problem"] = exc.message
    status = 422 if form.errors else 200
    return render(request, "search.html", status=status, **context)


EXPORT_COLUMNS = ("rank", "patent_id", "patent_title", "patent_abstract", "holder", "applicant_type", "legal_status",
                  "ipc", "application_date", "publication_date", "patent_kind", "open_licence", "price", "maturity",
                  "offer_modes", "near_duplicates")
EXPORT_DETAILS = ("patent_id", "score", "patent_language")


@router.get("/export.{fmt}")
def export_search(request: Request, service: ServiceDep, fmt: Format) -> FileResponse:
    """The whole ranked window of a search (same query string as the page) as CSV or XLSX."""
    lang = page_lang(request)
    form = SearchForm.parse(request.query_params)
    if form.query is None or form.errors:
        raise ApiError(422, "validation_error", next(iter(form.errors.values()), "q: give a query"), "q")
    req = form.query.request().model_copy(update={"offset": 0, "limit": min(service.candidates, s.MAX_LIMIT)})
    hits = search_patents(service, req).results
    if form.sort == "date":
        hits = sorted(hits, key=lambda h: (_date_key(h.record), h.rank))
    info = [(text("web.export.query", lang), form.q), (text("web.export.link", lang), str(request.url))]
    return hits_file(hits, fmt, lang, info, "patent-search")


def hits_file(hits: list[s.PatentHit], fmt: Format, lang: Lang, info: list[tuple[str, Any]],
              name: str) -> FileResponse:
    """Ranked patents as a CSV or XLSX download (``matcher.export``'s writers and column names)."""
    rows = [{"rank": n, "patent_id": h.id, "patent_title": h.record.title or h.record.abstract[:80],
             "patent_abstract": excerpt(h.record.abstract), "holder": holder_name(h.record) or "",
             "applicant_type": h.record.applicant_type, "legal_status": h.record.legal_status,
             "ipc": list(h.record.ipc[:5]), "application_date": _iso(h.record.application_date),
             "publication_date": _iso(h.record.publication_date), "patent_kind": h.record.kind or "",
             "open_licence": h.record.open_licence, "price": h.record.price or "", "maturity": h.record.maturity or "",
             "offer_modes": "、".join(h.record.cooperation_modes), "near_duplicates": "、".join(h.duplicates),
             "score": round(h.score, 6),
             "patent_language": h.record.language} for n, h in enumerate(hits, 1)]
    table = Table([(text("web.export.sheet", lang), rows)], list(EXPORT_COLUMNS), info, {"info": info, "rows": rows},
                  list(EXPORT_DETAILS))
    return table_download(table, name, fmt, lang)
