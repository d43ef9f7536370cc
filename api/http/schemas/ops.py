"""Operations: health, readiness, stats."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from api.http.schemas.writes import KindBuildStatus


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
