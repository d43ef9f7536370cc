"""Request and response models of the HTTP service: the OpenAPI document built from them is the contract.

Records reuse ``matcher.records.Patent`` / ``Demand`` and filters reuse ``matcher.filters.PatentFilters`` /
``DemandFilters``, so the service validates exactly as the CLI does. Every error, whatever its cause, has one
shape: ``{"error": {"code": ..., "message": ..., "field": ... | null, "details": [...]}}``.

Pagination is ``offset`` / ``limit`` over one ranked list per query. That list is the top ``window`` results
(``window`` = the ranker's ``candidates`` depth, 100 by default), computed the same way whatever the page, so
pages never overlap and concatenate to the unpaginated list; ``next_offset`` is null on the last page.

One module per resource (``common``: limits, field types, errors; ``results``; ``search``; ``match``; ``records``
with facets; ``writes``; ``ops``); every model is importable from here, as ``api.http.schemas.X``.
"""

from __future__ import annotations

from api.http.schemas.common import (
    MAX_DELETE_IDS,
    MAX_EXPLAINED,
    MAX_INGEST_RECORDS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_PORTFOLIO_IDS,
    MAX_QUERY_CHARS,
    ErrorDetail,
    ErrorInfo,
    ErrorResponse,
    Limit,
    ModeField,
    Offset,
    QueryText,
    StrictModel,
    is_none,
    normalised_length,
)
from api.http.schemas.match import (
    DemandMatchResponse,
    EnterpriseDemand,
    EnterpriseMatch,
    MatchDemandRequest,
    MatchPatentRequest,
    PatentMatchResponse,
    PortfolioRequest,
    PortfolioResponse,
    SupportingPatent,
)
from api.http.schemas.ops import HealthResponse, IndexStats, ReadyResponse, StatsResponse
from api.http.schemas.records import DemandRecord, FacetsResponse, FacetValue, PatentRecord, StoredRecord
from api.http.schemas.results import (
    ClosestSentence,
    DemandHit,
    Explanation,
    Hit,
    IndexRef,
    MatchedTerm,
    Page,
    PatentHit,
    RetrieverScore,
    Snippet,
)
from api.http.schemas.search import (
    DemandSearchRequest,
    DemandSearchResponse,
    FilterCount,
    FilterReport,
    PatentSearchQuery,
    PatentSearchRequest,
    PatentSearchResponse,
    RankedPage,
    RankedResponse,
)
from api.http.schemas.writes import (
    DEMAND_INGEST_EXAMPLES,
    PATENT_INGEST_EXAMPLES,
    BatchReport,
    BuildState,
    DeleteRequest,
    DeleteResponse,
    IndexSegments,
    IndexStatusResponse,
    IngestRequest,
    IngestResponse,
    KindBuildStatus,
    RebuildRequest,
    ReindexInfo,
    RejectedRecord,
)

__all__ = [
    "DEMAND_INGEST_EXAMPLES",
    "MAX_DELETE_IDS",
    "MAX_EXPLAINED",
    "MAX_INGEST_RECORDS",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "MAX_PORTFOLIO_IDS",
    "MAX_QUERY_CHARS",
    "PATENT_INGEST_EXAMPLES",
    "BatchReport",
    "BuildState",
    "ClosestSentence",
    "DeleteRequest",
    "DeleteResponse",
    "DemandHit",
    "DemandMatchResponse",
    "DemandRecord",
    "DemandSearchRequest",
    "DemandSearchResponse",
    "EnterpriseDemand",
    "EnterpriseMatch",
    "ErrorDetail",
    "ErrorInfo",
    "ErrorResponse",
    "Explanation",
    "FacetValue",
    "FacetsResponse",
    "FilterCount",
    "FilterReport",
    "HealthResponse",
    "Hit",
    "IndexRef",
    "IndexSegments",
    "IndexStats",
    "IndexStatusResponse",
    "IngestRequest",
    "IngestResponse",
    "KindBuildStatus",
    "Limit",
    "MatchDemandRequest",
    "MatchPatentRequest",
    "MatchedTerm",
    "ModeField",
    "Offset",
    "Page",
    "PatentHit",
    "PatentMatchResponse",
    "PatentRecord",
    "PatentSearchQuery",
    "PatentSearchRequest",
    "PatentSearchResponse",
    "PortfolioRequest",
    "PortfolioResponse",
    "QueryText",
    "RankedPage",
    "RankedResponse",
    "ReadyResponse",
    "RebuildRequest",
    "ReindexInfo",
    "RejectedRecord",
    "RetrieverScore",
    "Snippet",
    "StatsResponse",
    "StoredRecord",
    "StrictModel",
    "SupportingPatent",
    "is_none",
    "normalised_length",
]
