"""Search requests (POST bodies, GET query forms) and responses, with the filter report."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from api.http.schemas.common import MAX_EXPLAINED, MAX_QUERY_CHARS, Limit, ModeField, Offset, QueryText, StrictModel
from api.http.schemas.results import DemandHit, IndexRef, Page, PatentHit
from matcher.config import Mode
from matcher.filters import DemandFilters, PatentFilters
from matcher.reasons import refusal
from matcher.records import ApplicantType, Language, LegalStatus, PatentType


class RankedPage(StrictModel):
    """What every ranked request has: the ranking mode, one page of the ranked list, and whether to explain."""

    mode: ModeField = None
    offset: Offset = 0
    limit: Limit = 10
    explain: bool = Field(default=False, description=f"Say why each result matched (slower: per-result work); "
                                                     f"with explain, limit is at most {MAX_EXPLAINED}.")

    @field_validator("explain")
    @classmethod
    def _bounded_cost(cls, explain: bool, info: ValidationInfo) -> bool:
        if explain and info.data.get("limit", 0) > MAX_EXPLAINED:
            raise refusal("explain_limit", limit=MAX_EXPLAINED)
        return explain

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        """The schema says the cost bound too: with ``explain``, ``limit`` is at most ``MAX_EXPLAINED``."""
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target["if"] = {"properties": {"explain": {"const": True}}, "required": ["explain"]}
        target["then"] = {"properties": {"limit": {"maximum": MAX_EXPLAINED}}}
        return schema
    min_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                    description="Only results whose calibrated relevance is at least this (needs "
                                                "the learned hybrid ranker).")


class PatentSearchRequest(RankedPage):
    query: QueryText = Field(description=f"Free text, Chinese or English, at most {MAX_QUERY_CHARS} characters.")
    filters: PatentFilters = Field(default_factory=PatentFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "锂离子电池 正极材料", "filters": {"ipc": ["H01M"], "applicant_type": ["university"]},
         "mode": "hybrid", "limit": 10},
        {"query": "graphics processor thread scheduling", "filters": {"language": ["en"], "ipc": ["G06F"]},
         "offset": 0, "limit": 5, "explain": True},
    ]})


class PatentSearchQuery(RankedPage):
    """The GET form of a patent search: the filters as query parameters (lists repeat: ``ipc=H01M&ipc=G06F``)."""

    q: QueryText = Field(description="Free text, Chinese or English.", examples=["石墨烯 散热膜", "memory controller"])
    ipc: list[str] = Field(default_factory=list, description="IPC/CPC prefixes (any of).", examples=[["H01M"]])
    applicant_type: list[ApplicantType] = Field(default_factory=list)
    applicant: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, examples=["浙江大学", "NVIDIA"])
    legal_status: list[LegalStatus | Literal["unknown"]] = Field(
        default_factory=list, description="Default (empty): valid or unknown.")
    open_licence_only: bool = False
    date_from: date | None = None
    date_to: date | None = None
    maturity: list[str] = Field(default_factory=list)
    kind: list[str] = Field(default_factory=list, examples=[["发明专利"]])
    language: list[Language] = Field(default_factory=list)
    patent_type: list[PatentType] = Field(default_factory=list, description="From the patent's numbers (derived).")
    granted_only: bool = Field(default=False, description="Only grants (granted is not valid: it may have lapsed).")
    include_inferred: bool = Field(default=True, description="false: leave out values inferred from names and texts.")

    def filters(self) -> PatentFilters:
        return PatentFilters(
            ipc=self.ipc, applicant_type=self.applicant_type, applicant=self.applicant,
            legal_status=self.legal_status or None, open_licence_only=self.open_licence_only,
            date_from=self.date_from, date_to=self.date_to, maturity=self.maturity, kind=self.kind,
            language=self.language, patent_type=self.patent_type, granted_only=self.granted_only,
            include_inferred=self.include_inferred,
        )

    def request(self) -> PatentSearchRequest:
        return PatentSearchRequest(query=self.q, filters=self.filters(), mode=self.mode, offset=self.offset,
                                   limit=self.limit, explain=self.explain, min_score=self.min_score)


class DemandSearchRequest(RankedPage):
    query: QueryText
    filters: DemandFilters = Field(default_factory=DemandFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "污水处理 膜分离", "filters": {"region": ["浙江"]}, "limit": 10},
        {"query": "battery recycling", "limit": 5},
    ]})


class RankedResponse(BaseModel):
    """What every ranked answer has: the mode used, the page, the snapshot that answered, and the time taken."""

    mode: Mode
    page: Page
    index: IndexRef
    took_ms: float


class FilterCount(BaseModel):
    """One active filter, counted over the whole index on its own."""

    filter: str = Field(description="The filter's name, e.g. applicant_type.")
    value: str = Field(description="What it asked for, e.g. university (several: comma-separated).")
    keeps: int = Field(description="Records this filter alone keeps.")
    missing: int = Field(description="Records with no value at all for its field (no applicant type, no date ...).")
    default: bool = Field(description="A default filter (legal status valid or unknown), not asked for.")


class FilterReport(BaseModel):
    """Why the first page holds fewer results than asked for: which filter emptied the list, what each keeps."""

    total: int = Field(description="Records in the index.")
    kept_by_filters: int = Field(description="Records all filters together keep.")
    found: int = Field(description="Results the search returned.")
    requested: int
    emptied_by: str | None = Field(description="A filter no record passes, else the one after which none is left.")
    filters: list[FilterCount]
    messages: dict[Language, list[str]] = Field(description="The same facts as sentences, Chinese and English.")


class PatentSearchResponse(RankedResponse):
    query: str
    results: list[PatentHit]
    filter_report: FilterReport | None = Field(
        default=None, description="Present when the page holds fewer results than `limit` (a filter emptied it, or "
                                  "the filters and the query leave few): the facts a user needs to widen the search.")


class DemandSearchResponse(RankedResponse):
    query: str
    results: list[DemandHit]
