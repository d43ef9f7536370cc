"""Matching requests and responses: demand -> patents, patent -> demands, portfolio -> enterprises."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from api.http.schemas.common import MAX_LIMIT, MAX_PORTFOLIO_IDS, Limit, ModeField, Offset, StrictModel
from api.http.schemas.results import DemandHit, PatentHit, RetrieverScore
from api.http.schemas.search import RankedPage, RankedResponse
from matcher.config import Mode
from matcher.filters import DemandFilters, PatentFilters
from matcher.records import Demand, Patent, RecordId


class MatchDemandRequest(RankedPage):
    """Patents for a demand: a stored demand by ``demand_id``, or one posted inline as ``demand``."""

    demand_id: RecordId | None = None
    demand: Demand | None = None
    filters: PatentFilters = Field(default_factory=PatentFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [  # exactly one, as the server checks
        {"required": ["demand_id"], "properties": {"demand_id": {"type": "string"}, "demand": {"type": "null"}}},
        {"required": ["demand"], "properties": {"demand": {"type": "object"}, "demand_id": {"type": "null"}}},
    ], "examples": [
        {"demand_id": "ZB-D-0001", "limit": 10},
        {"demand": {"id": "inline-1", "title": "新能源汽车电池热管理技术",
                    "description": "寻求动力电池包散热与温度均衡方案，可技术许可或合作开发。"},
         "filters": {"legal_status": ["valid", "unknown"]}, "limit": 5, "explain": True},
        {"demand": {"id": "inline-2", "title": "Low-power GPU scheduling", "language": "en",
                    "description": "Looking for a licensable method to schedule threads on graphics processors."},
         "mode": "hybrid", "limit": 5},
    ]})


class MatchPatentRequest(RankedPage):
    """Demands (enterprises) a stored patent could serve."""

    patent_id: RecordId
    filters: DemandFilters = Field(default_factory=DemandFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"patent_id": "CN113914863A", "filters": {"industry": ["制造业"]}, "limit": 10},
    ]})


class PortfolioRequest(StrictModel):
    """A portfolio (a list of patent ids, or every patent of an applicant) -> enterprises with supporting patents."""

    patent_ids: list[RecordId] = Field(default_factory=list, max_length=MAX_PORTFOLIO_IDS)
    applicant: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    filters: DemandFilters = Field(default_factory=DemandFilters)
    mode: ModeField = None
    offset: Offset = 0
    limit: Limit = 10
    per_patent: int = Field(default=20, ge=1, le=MAX_LIMIT, description="Demands fetched per patent.")
    per_enterprise: int = Field(default=5, ge=1, le=50, description="Demands (and patents per demand) shown.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [  # exactly one, as the server checks
        {"required": ["patent_ids"], "properties": {"patent_ids": {"minItems": 1}, "applicant": {"type": "null"}}},
        {"required": ["applicant"], "properties": {"applicant": {"type": "string"}, "patent_ids": {"maxItems": 0}}},
    ], "examples": [
        {"applicant": "浙江大学", "limit": 10},
        {"patent_ids": ["US10001996B2", "US10002112B2"], "filters": {"language": ["en"]}, "limit": 5},
    ]})


class PatentMatchResponse(RankedResponse):
    demand: Demand
    results: list[PatentHit]


class DemandMatchResponse(RankedResponse):
    patent: Patent
    results: list[DemandHit]


class SupportingPatent(BaseModel):
    patent_id: str
    title: str
    score: float
    retrievers: dict[str, RetrieverScore]


class EnterpriseDemand(BaseModel):
    demand_id: str
    title: str
    score: float
    patents: list[SupportingPatent]


class EnterpriseMatch(BaseModel):
    rank: int
    enterprise: str = Field(description="The enterprise; a demand without one stands alone as '(demand ID)'.")
    score: float
    demands: list[EnterpriseDemand]


class PortfolioResponse(BaseModel):
    patents: list[str] = Field(description="The portfolio's patent ids (aliases resolved).")
    mode: Mode
    offset: int
    limit: int
    next_offset: int | None
    enterprises: list[EnterpriseMatch]
    took_ms: float
