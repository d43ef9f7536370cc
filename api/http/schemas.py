"""Request and response models of the HTTP service: the OpenAPI document built from them is the contract.

Records reuse ``matcher.records.Patent`` / ``Demand`` and filters reuse ``matcher.filters.PatentFilters`` /
``DemandFilters``, so the service validates exactly as the CLI does. Every error, whatever its cause, has one
shape: ``{"error": {"code": ..., "message": ..., "field": ... | null, "details": [...]}}``.

Pagination is ``offset`` / ``limit`` over one ranked list per query. That list is the top ``window`` results
(``window`` = the ranker's ``candidates`` depth, 100 by default), computed the same way whatever the page, so
pages never overlap and concatenate to the unpaginated list; ``next_offset`` is null on the last page.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from matcher.config import Mode
from matcher.filters import DemandFilters, PatentFilters
from matcher.reasons import refusal
from matcher.records import ApplicantType, Demand, Language, LegalStatus, Patent, PatentType, RecordId

MAX_QUERY_CHARS = 2_000
MAX_LIMIT = 200
MAX_OFFSET = 10_000
MAX_INGEST_RECORDS = 10_000
MAX_DELETE_IDS = 1_000
MAX_PORTFOLIO_IDS = 200
Kind = Literal["patents", "demands"]

MAX_EXPLAINED = 50  # explained results per request: each costs snippets and a sentence embedding


# a query has a visible character: not only white space, control or invisible format characters (one character
# class read alike by Python and ECMA-262)
VISIBLE = (r"[^\x00-\x20\x7f-\x9f\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000"
           r"\ufeff\ufff9-\ufffb]")


def _normalised_length(query: str) -> str:
    """The length limit holds after Unicode normalisation, which the analyzers apply (one U+FDFA is 18 characters)."""
    if len(unicodedata.normalize("NFKC", query)) > MAX_QUERY_CHARS:
        raise refusal("query_nfkc", limit=MAX_QUERY_CHARS)
    return query


QueryText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS, pattern=VISIBLE),
    AfterValidator(_normalised_length),
]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Results to skip (0-based).")]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")]
ModeField = Annotated[Mode | None, Field(description="bm25, dense or hybrid; default: the ranker config's mode.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    """One reason a request was refused; ``file`` and ``line`` are set for ingested records."""

    field: str | None = Field(default=None, description="Dotted path of the offending field, or a column name.")
    reason: str = Field(description="Why, in the request's language (Accept-Language: zh unless en is preferred).")
    code: str | None = Field(default=None, description="The reason's stable machine-readable code, e.g. "
                                                       "string_too_long, csv_unclosed_quote, key_twice.")
    file: str | None = None
    line: int | None = Field(default=None, description="Line of the file, or 1-based position in `records`.")


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_error, not_found, unauthorized.")
    message: str = Field(description="What went wrong, in the request's language (Accept-Language; zh unless en "
                                     "is preferred): the same code always, the words in zh or en.")
    field: str | None = Field(default=None, description="The field at fault, when there is one.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorInfo

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "validation_error", "message": "not an IPC/CPC code or prefix: 'X99'",
                   "field": "filters.ipc", "details": [{"field": "filters.ipc", "reason": "not an IPC/CPC code"}]}},
        {"error": {"code": "not_found", "message": "no patent with id 'CN000000000A'", "field": "patent_id",
                   "details": []}},
    ]})


def _is_none(value: object) -> bool:
    return value is None


# --- results --------------------------------------------------------------------------------------------
class RetrieverScore(BaseModel):
    """How one retriever saw a result: its rank and score, or why it abstained; ``fused`` gives the method."""

    rank: int | None = Field(default=None, exclude_if=_is_none)
    score: float | None = Field(default=None, exclude_if=_is_none)
    abstained: str | None = Field(default=None, exclude_if=_is_none)
    method: str | None = Field(default=None, exclude_if=_is_none)
    margin: float | None = Field(default=None, exclude_if=_is_none,
                                 description="The learned fusion's margin (its relevance is calibrated from it).")
    translated: bool | None = Field(default=None, exclude_if=_is_none,
                                    description="BM25 saw the query translated into the record's language.")
    query: str | None = Field(default=None, exclude_if=_is_none, description="The translated query BM25 saw.")


class Snippet(BaseModel):
    text: str
    highlights: list[list[int]] = Field(description="[start, end) character offsets into text.")


class MatchedTerm(BaseModel):
    term: str
    fields: list[str]
    weight: float | None = Field(default=None, description="The term's BM25 idf: terms are listed most informative "
                                                           "first.")


class ClosestSentence(BaseModel):
    text: str
    similarity: float


class Explanation(BaseModel):
    """Why a record matched: shared query terms and where, highlighted snippets, the sentence closest in meaning."""

    matched_terms: list[MatchedTerm]
    snippets: dict[str, Snippet]
    closest_sentence: ClosestSentence | None = None
    language: Language


class Hit(BaseModel):
    """One ranked result; ``PatentHit`` and ``DemandHit`` add the record."""

    rank: int = Field(description="1-based rank in the whole ranked list (not in the page).")
    id: str
    score: float
    relevance: float | None = Field(default=None, description="Calibrated estimate in [0, 1] that the record is "
                                                             "relevant (the learned hybrid ranker; null otherwise).")
    duplicates: list[str] = Field(default_factory=list, description="Ids of near-duplicates folded under this one.")
    language: Language
    retrievers: dict[str, RetrieverScore]
    explanation: Explanation | None = None


class PatentHit(Hit):
    record: Patent


class DemandHit(Hit):
    record: Demand


class IndexRef(BaseModel):
    """The snapshot that answered a query."""

    name: str
    data_version: int
    doc_count: int


class Page(BaseModel):
    offset: int
    limit: int
    window: int = Field(description="How many results the ranked list holds at most; offset beyond it is empty.")
    next_offset: int | None = Field(description="Offset of the next page, or null on the last page.")


# --- search ---------------------------------------------------------------------------------------------
class _RankedPage(_Strict):
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


class PatentSearchRequest(_RankedPage):
    query: QueryText = Field(description=f"Free text, Chinese or English, at most {MAX_QUERY_CHARS} characters.")
    filters: PatentFilters = Field(default_factory=PatentFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "锂离子电池 正极材料", "filters": {"ipc": ["H01M"], "applicant_type": ["university"]},
         "mode": "hybrid", "limit": 10},
        {"query": "graphics processor thread scheduling", "filters": {"language": ["en"], "ipc": ["G06F"]},
         "offset": 0, "limit": 5, "explain": True},
    ]})


class PatentSearchQuery(_RankedPage):
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


class DemandSearchRequest(_RankedPage):
    query: QueryText
    filters: DemandFilters = Field(default_factory=DemandFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "污水处理 膜分离", "filters": {"region": ["浙江"]}, "limit": 10},
        {"query": "battery recycling", "limit": 5},
    ]})


class _RankedResponse(BaseModel):
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


class PatentSearchResponse(_RankedResponse):
    query: str
    results: list[PatentHit]
    filter_report: FilterReport | None = Field(
        default=None, description="Present when the page holds fewer results than `limit` (a filter emptied it, or "
                                  "the filters and the query leave few): the facts a user needs to widen the search.")


class DemandSearchResponse(_RankedResponse):
    query: str
    results: list[DemandHit]


# --- matching -------------------------------------------------------------------------------------------
class MatchDemandRequest(_RankedPage):
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


class MatchPatentRequest(_RankedPage):
    """Demands (enterprises) a stored patent could serve."""

    patent_id: RecordId
    filters: DemandFilters = Field(default_factory=DemandFilters)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"patent_id": "CN113914863A", "filters": {"industry": ["制造业"]}, "limit": 10},
    ]})


class PortfolioRequest(_Strict):
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


class PatentMatchResponse(_RankedResponse):
    demand: Demand
    results: list[PatentHit]


class DemandMatchResponse(_RankedResponse):
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


# --- records --------------------------------------------------------------------------------------------
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

    kind: Kind
    index: IndexRef
    facets: dict[str, list[FacetValue]]


# --- writes ---------------------------------------------------------------------------------------------
class IngestRequest(_Strict):
    """Records as JSON objects, validated by the same rules as ``pmatch ingest`` (Chinese labels such as 有效 or 高校
    are mapped; a missing language is detected). The batch lands whole or not at all unless ``skip_invalid``."""

    records: list[Annotated[dict[str, Any], WithJsonSchema(
        {"type": "object", "required": ["id"], "minProperties": 2,
         "description": "A record: its id and at least one more field (a patent needs a title or an abstract, a "
                        "demand a title). Field names and values as in Patent / Demand; Chinese labels are read."})]] \
        = Field(min_length=1, max_length=MAX_INGEST_RECORDS)
    skip_invalid: bool = Field(default=False, description="Store the valid records and return the bad ones.")


PATENT_INGEST_EXAMPLES = {
    "zh": {"summary": "A Chinese patent", "value": {"records": [{
        "id": "CN999000001A", "title": "一种锂离子电池正极材料的制备方法",
        "abstract": "本发明公开了一种磷酸铁锂正极材料的制备方法，提高了电池的循环稳定性。",
        "ipc": ["H01M4/58"], "applicants": ["某某大学"], "applicant_type": "高校", "legal_status": "有效",
        "application_date": "2021-03-15"}]}},
    "en": {"summary": "An English patent", "value": {"records": [{
        "id": "US99990001B2", "title": "Thread scheduling for graphics processors",
        "abstract": "A scheduler assigns thread groups to streaming multiprocessors based on register pressure.",
        "ipc": ["G06F9/48"], "applicants": ["Example Corp"], "applicant_type": "company", "language": "en"}]}},
}
DEMAND_INGEST_EXAMPLES = {
    "zh": {"summary": "A Chinese demand", "value": {"records": [{
        "id": "D-2024-001", "title": "高效污水处理膜技术需求", "description": "寻求低能耗膜分离污水处理技术。",
        "enterprise": "某环保科技有限公司", "industry": "水利、环境和公共设施管理业", "region": "浙江省"}]}},
    "en": {"summary": "An English demand", "value": {"records": [{
        "id": "D-2024-002", "title": "Battery recycling process", "language": "en",
        "description": "We need a licensable process to recover lithium from spent cells."}]}},
}


class RejectedRecord(BaseModel):
    line: int | None
    errors: list[str]


class BatchReport(BaseModel):
    kind: Kind
    file: str
    batch_id: int | None
    read: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: list[dict[str, str]] = Field(description="Exact duplicates not stored: {id, duplicate_of}.")
    rejected: int


BuildState = Literal["idle", "queued", "building", "published", "failed", "empty", "disabled"]


class ReindexInfo(BaseModel):
    """What happened to the index after a write: ``queued`` (a background rebuild will publish it), ``published``
    (with ``wait=true``: searches now see the change), ``failed``, or ``disabled`` (``reindex=false``)."""

    state: BuildState
    kinds: list[Kind]
    message: str | None = None


class IngestResponse(BaseModel):
    report: BatchReport
    rejects: list[RejectedRecord] = Field(default_factory=list)
    reindex: ReindexInfo


class DeleteRequest(_Strict):
    ids: list[RecordId] = Field(min_length=1, max_length=MAX_DELETE_IDS)


class DeleteResponse(BaseModel):
    deleted: list[str]
    missing: list[str]
    reindex: ReindexInfo


class RebuildRequest(_Strict):
    kinds: list[Kind] = Field(default_factory=lambda: ["patents", "demands"], min_length=1)
    wait: bool = Field(default=False, description="Answer when the new snapshots are published.")


class KindBuildStatus(BaseModel):
    state: BuildState
    requested: int = Field(description="Rebuild requests so far (a generation counter).")
    built: int = Field(description="Generation of the last published rebuild.")
    last_error: str | None = None
    last_build_seconds: float | None = None
    last_snapshot: str | None = None


class IndexStatusResponse(BaseModel):
    builds: dict[str, KindBuildStatus]
    served: dict[str, IndexRef | None]


# --- operations -----------------------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    ready: bool
    indexes: dict[str, str | None]
    model: str | None
    message: str | None = None


class IndexStats(BaseModel):
    name: str
    data_version: int
    doc_count: int
    built_at: str
    stale: bool = Field(description="The store changed since this snapshot was built.")
    dense_model: str | None
    manifest: dict[str, Any]


class StatsResponse(BaseModel):
    records: dict[str, int]
    data_version: int
    indexes: dict[str, IndexStats | None]
    builds: dict[str, KindBuildStatus]
    model: dict[str, Any] | None
    ranker: dict[str, Any]
    limits: dict[str, int]
    threads: dict[str, Any]
    index_in_memory: bool = Field(description="Indexes read into memory (true) or memory-mapped (false).")
    api_keys: int
    reads_need_key: bool
