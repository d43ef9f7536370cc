"""Stored records and facet counts."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
)

from api.http.schemas.results import IndexRef
from matcher.records import Demand, Patent
from matcher.store import Collection


class StoredRecord(BaseModel):
    id: str = Field(description="The stored id.")
    requested_id: str = Field(description="The id asked for: an exact duplicate's id resolves to the stored one.")


class PatentRecord(StoredRecord):
    record: Patent


class DemandRecord(StoredRecord):
    record: Demand


# --- facets ---------------------------------------------------------------------------------------------
class FacetValue(BaseModel):
    value: str
    count: int


class FacetsResponse(BaseModel):
    """Values with record counts, most common first, from the served index (what the filters act on)."""

    kind: Collection
    index: IndexRef
    facets: dict[str, list[FacetValue]]
