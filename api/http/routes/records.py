"""``/v1/patents/{id}``, ``/v1/demands/{id}`` (stored records) and ``/v1/facets/*`` (filter values with counts)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Query

from api.http import schemas as s
from api.http.errors import ApiError
from api.http.security import read_router
from api.http.state import Service, ServiceDep
from matcher.i18n import Message
from matcher.records import RecordId
from matcher.store import Collection

read = read_router()
RecordT = TypeVar("RecordT", s.PatentRecord, s.DemandRecord)


def _stored(service: Service, kind: Collection, record_id: str, answer: type[RecordT]) -> RecordT:
    """The stored record of ``kind`` by id or alias, or a 404 naming the id."""
    record = service.searcher.store.get(kind, record_id)
    if record is None:
        noun = kind[:-1]
        raise ApiError(404, "not_found", Message(f"http.no_{noun}", id=repr(record_id)), f"{noun}_id")
    return answer(id=record.id, requested_id=record_id, record=record)


@read.get("/patents/{patent_id}", tags=["records"], summary="A patent by id")
def get_patent(service: ServiceDep, patent_id: RecordId) -> s.PatentRecord:
    """An exact duplicate's id (an alias) resolves to the stored record."""
    return _stored(service, "patents", patent_id, s.PatentRecord)


@read.get("/demands/{demand_id}", tags=["records"], summary="A demand by id")
def get_demand(service: ServiceDep, demand_id: RecordId) -> s.DemandRecord:
    return _stored(service, "demands", demand_id, s.DemandRecord)


@read.get("/facets/patents", tags=["facets"], summary="Patent filter values with counts")
def facets_patents(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> s.FacetsResponse:
    """Counts over the served index for filter menus: languages, applicant types, legal statuses (``unknown`` =
    not published), kinds, maturity, industries, technical areas, open licence, cooperation modes, applicants, IPC
    codes, IPC sections (A-H) and subclasses (H01M). Each list is cut to ``limit`` values."""
    index, facets = service.facets("patents", limit)
    return s.FacetsResponse(kind="patents", index=index, facets=facets)


@read.get("/facets/demands", tags=["facets"], summary="Demand filter values with counts")
def facets_demands(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> s.FacetsResponse:
    index, facets = service.facets("demands", limit)
    return s.FacetsResponse(kind="demands", index=index, facets=facets)
