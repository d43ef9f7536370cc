"""``/v1/feeds/{enterprise,holder}/{name}`` (new matches since a cursor), ``/v1/saved-searches``,
``/v1/licence-requests`` (the open-licence notice) and ``/v1/standing`` (pending work, worker status).

Feeds come from the match events that the service's background worker records once a write is searchable
(``matcher.standing``); a page's ``next_cursor`` is given back as ``cursor`` to read on, with no gaps or repeats.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.http.errors import ApiError
from api.http.security import WriteKey, read_router, write_router
from api.http.state import Service, ServiceDep
from matcher import match_events as ev
from matcher.feeds import MAX_PAGE, BadCursor, Owner, read_feed
from matcher.filters import DemandFilters, PatentFilters
from matcher.i18n import text
from matcher.licence import Licensee, NotOpenLicence, build_notice, render_bytes
from matcher.records import Patent, RecordId

read = read_router()
write = write_router()
LangQ = Annotated[Literal["zh", "en"], Query(description="Language of messages and of the notice (zh default).")]
Name = Annotated[str, PathParam(min_length=1, max_length=2000, description="The enterprise's or holder's name.")]


class FeedResponse(BaseModel):
    owner_type: Literal["enterprise", "holder"]
    name: str
    items: list[dict[str, Any]] = Field(description="Match events, oldest first: event_id, created_at, score, "
                                                    "evidence, direction, patent, demand, saved_search, explanation.")
    next_cursor: str = Field(description="Pass as `cursor` to read on (also when nothing was new).")
    has_more: bool


def _feed(service: Service, owner_type: Owner, name: str, cursor: str | None, since: date | None, limit: int,
          include_capped: bool, lang: str) -> FeedResponse:
    try:
        page = read_feed(service.searcher.store, owner_type, name, cursor, since, limit, include_capped)
    except BadCursor as exc:
        raise ApiError(422, "invalid_cursor", text("docking.feed.bad_cursor", lang, reason=str(exc)), "cursor") \
            from None
    return FeedResponse.model_validate(page.to_dict())


Cursor = Annotated[str | None, Query(max_length=4000, description="`next_cursor` of the last page read.")]
Since = Annotated[date | None, Query(description="Only matches made on or after this date.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Capped = Annotated[bool, Query(description="Include the matches over the enterprise's cap.")]


@read.get("/feeds/enterprise/{name}", tags=["feeds"], summary="An enterprise's new matches since a cursor")
def enterprise_feed(service: ServiceDep, name: Name, cursor: Cursor = None, since: Since = None, limit: Limit = 50,
                    include_capped: Capped = False, lang: LangQ = "zh") -> FeedResponse:
    """Matches of the enterprise's demands (a demand naming no enterprise is keyed `(demand ID)`) and new results of
    its saved searches."""
    return _feed(service, "enterprise", name, cursor, since, limit, include_capped, lang)


@read.get("/feeds/holder/{name}", tags=["feeds"], summary="A patent holder's new matches since a cursor")
def holder_feed(service: ServiceDep, name: Name, cursor: Cursor = None, since: Since = None, limit: Limit = 50,
                include_capped: Capped = False, lang: LangQ = "zh") -> FeedResponse:
    """Matches of the patents the holder is an applicant of, and new results of its saved searches over demands."""
    return _feed(service, "holder", name, cursor, since, limit, include_capped, lang)


class SavedSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_type: Literal["enterprise", "holder"] = Field(description="enterprise: searches patents; holder: demands.")
    owner: str = Field(min_length=1, max_length=2000)
    name: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    patent_filters: PatentFilters = Field(default_factory=PatentFilters)
    demand_filters: DemandFilters = Field(default_factory=DemandFilters)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0, description="Floor on calibrated relevance.")


class SavedSearchOut(BaseModel):
    id: int
    owner_type: str
    owner: str
    name: str
    kind: str
    query: str
    filters: dict[str, Any]
    min_score: float | None
    created_at: str


@write.post("/saved-searches", tags=["feeds"], summary="Save a search whose new results join the owner's feed")
def add_saved_search(service: ServiceDep, _key: WriteKey, body: SavedSearchRequest) -> SavedSearchOut:
    kind = "patents" if body.owner_type == "enterprise" else "demands"
    filters = (body.patent_filters if kind == "patents" else body.demand_filters).model_dump(mode="json",
                                                                                              exclude_defaults=True)
    with service.workspace.open_store() as store:
        saved = ev.save_search(store, body.owner_type, body.owner, body.name, kind, body.query, filters,
                               body.min_score)
    return SavedSearchOut.model_validate(saved.to_dict())


@read.get("/saved-searches", tags=["feeds"], summary="Saved searches")
def list_saved_searches(service: ServiceDep, owner: Annotated[str | None, Query(max_length=2000)] = None
                        ) -> list[SavedSearchOut]:
    found = ev.saved_searches(service.searcher.store, owner=owner)
    return [SavedSearchOut.model_validate(s.to_dict()) for s in found]


@write.delete("/saved-searches/{search_id}", tags=["feeds"], summary="Remove a saved search")
def remove_saved_search(service: ServiceDep, _key: WriteKey, search_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
                        lang: LangQ = "zh") -> dict[str, int]:
    with service.workspace.open_store() as store:
        if not ev.delete_saved_search(store, search_id):
            raise ApiError(404, "not_found", text("docking.saved.unknown", lang, id=search_id), "search_id")
    return {"removed": search_id}


class LicenseeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    credit_code: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=2000)
    contact: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=320)


class LicenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patent_id: RecordId
    enterprise: LicenseeIn
    format: Literal["docx", "pdf", "md"] = "docx"
    lang: Literal["zh", "en"] = "zh"


MEDIA = {"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "pdf": "application/pdf", "md": "text/markdown; charset=utf-8"}


@read.post("/licence-requests", tags=["feeds"], summary="The notice that takes a patent's declared open licence",
           response_class=Response, responses={200: {"content": {m.split(";")[0]: {} for m in MEDIA.values()},
                                                     "description": "The notice as DOCX, PDF or Markdown."}})
def licence_request(service: ServiceDep, body: LicenceRequest) -> Response:
    """Refused (422 `no_open_licence`) for a patent without an open-licence declaration and its terms."""
    patent = service.searcher.store.get("patents", body.patent_id)
    if not isinstance(patent, Patent):
        raise ApiError(404, "not_found", text("docking.licence.unknown", body.lang, id=body.patent_id), "patent_id")
    e = body.enterprise
    try:
        notice = build_notice(patent, Licensee(e.name, e.credit_code, e.address, e.contact, e.phone, e.email),
                              body.lang)
    except NotOpenLicence as exc:
        raise ApiError(422, "no_open_licence", exc.message(body.lang), "patent_id") from None
    data = render_bytes(notice, f".{body.format}")
    filename = f"licence-request-{re.sub(r'[^A-Za-z0-9._-]', '_', patent.id)}.{body.format}"
    return Response(data, media_type=MEDIA[body.format],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@read.get("/standing", tags=["feeds"], summary="Standing matches: pending work and the background worker")
def standing_status(service: ServiceDep) -> dict[str, Any]:
    worker = service.standing
    if worker is None:
        return {"pending": ev.pending_count(service.searcher.store), "last_run": None, "last_error": None,
                "background": False}
    return {**worker.status(), "background": True}
