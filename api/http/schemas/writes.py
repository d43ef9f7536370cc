"""Writes: ingest, delete, rebuild, and the index status they report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    WithJsonSchema,
)

from api.http.schemas.common import MAX_DELETE_IDS, MAX_INGEST_RECORDS, StrictModel
from api.http.schemas.results import IndexRef
from matcher.records import RecordId
from matcher.store import Collection


class IngestRequest(StrictModel):
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
    kind: Collection
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
    kinds: list[Collection]
    message: str | None = None
    searchable_at: str | None = Field(default=None, description="With wait=true: when searches began to see the "
                                      "write (UTC).")
    seconds: dict[str, Any] | None = Field(default=None, description="With wait=true: the flush's time by stage "
                                           "(diff, embed, segment_write, publish, total), per kind.")


class IngestResponse(BaseModel):
    report: BatchReport
    rejects: list[RejectedRecord] = Field(default_factory=list)
    reindex: ReindexInfo


class DeleteRequest(StrictModel):
    ids: list[RecordId] = Field(min_length=1, max_length=MAX_DELETE_IDS)


class DeleteResponse(BaseModel):
    deleted: list[str]
    missing: list[str]
    reindex: ReindexInfo


class RebuildRequest(StrictModel):
    kinds: list[Collection] = Field(default_factory=lambda: ["patents", "demands"], min_length=1)
    wait: bool = Field(default=False, description="Answer when the new snapshots are published.")


class KindBuildStatus(BaseModel):
    state: BuildState
    requested: int = Field(description="Rebuild requests so far (a generation counter).")
    built: int = Field(description="Generation of the last published rebuild.")
    last_error: str | None = None
    last_build_seconds: float | None = None
    last_snapshot: str | None = None
    pending: bool = Field(default=False, description="A flush is queued or running: writes not yet searchable.")
    last_flush: dict[str, Any] | None = Field(default=None, description="What the last flush did: added, deleted, "
                                              "full, seconds by stage.")
    last_searchable_at: str | None = None
    merging: bool = False
    last_merge_seconds: float | None = None
    rebuilding: bool = Field(default=False, description="A full rebuild is running; flushes of new writes go on "
                             "beside it.")


class IndexSegments(BaseModel):
    """The served snapshot's segments and freshness."""

    segments: int
    segment_sizes: list[int] = Field(description="Searchable records per segment, oldest first.")
    deleted: int = Field(description="Positions masked as deleted or superseded (merges drop them).")
    doc_count: int
    pending_writes: bool = Field(description="The store changed since this snapshot: some writes are not searchable.")
    last_write_at: str | None = Field(description="When the newest searchable write was published (UTC).")
    last_write_age_seconds: float | None
    full_built_at: str


class IndexStatusResponse(BaseModel):
    builds: dict[str, KindBuildStatus]
    served: dict[str, IndexRef | None]
    segments: dict[str, IndexSegments | None] = Field(default_factory=dict)
