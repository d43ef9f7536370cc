"""How the HTTP service runs: ``ServiceSettings``, read from ``PMATCH_API_*`` environment variables.

Every field is ``PMATCH_API_<FIELD>`` (e.g. ``PMATCH_API_READS_NEED_KEY=1``); three shorter forms are read too:
``PMATCH_API_THREADS`` (``request_threads``), ``PMATCH_API_MAX_UPLOAD_MB`` (``max_upload_bytes`` in MiB) and
``PMATCH_API_MMAP=1`` (``index_in_memory=false``). Values given to the constructor win over the environment.
"""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher.config import RankerConfig


class ServiceSettings(BaseSettings):
    """How the service runs. ``ranker`` overrides the workspace's ranker config (tests use the tiny model)."""

    model_config = SettingsConfigDict(env_prefix="PMATCH_API_", populate_by_name=True, extra="ignore")

    ranker: RankerConfig | None = None
    reads_need_key: bool = Field(default=False, description="Close reads too: every endpoint but health needs a key.")
    writer: bool = Field(default=True, description=(
        "This process takes writes (ingest, delete, rebuild). Run one writer per workspace; every other replica of "
        "the same workspace sets PMATCH_API_WRITER=0 and answers writes with 403 read_replica (README, serving)."))
    max_upload_bytes: int = Field(default=50 * 2**20, ge=1024, description="Largest request body (uploads too).")
    max_portfolio_patents: int = Field(default=200, ge=1)
    reindex_wait_seconds: float = Field(default=900.0, gt=0, description="How long wait=true waits for a rebuild.")
    build_threads: int = Field(default=1, ge=1, description="Threads of a background index build.")
    build_nice: int = Field(default=10, ge=0, le=19, description="CPU niceness of background index builds.")
    warm: bool = Field(default=True, description="Load snapshots and the model at startup (readiness waits).")
    index_in_memory: bool = Field(default=True, description=(
        "Read the served indexes into memory instead of memory-mapping them. Mapped pages can be dropped by the "
        "kernel and read back from disk mid-query (at 1M on a host with proactive reclaim: hybrid p99 153 vs 63 ms); "
        "in memory costs ~0.5 GB more at 1M and a second copy while a rebuilt snapshot is swapped in."))
    request_threads: int = Field(
        default=4, ge=1, le=256,
        validation_alias=AliasChoices("PMATCH_API_REQUEST_THREADS", "PMATCH_API_THREADS"), description=(
            "Requests computed at once (the thread pool's size); more wait their turn. Searches are CPU- and "
            "GIL-bound: a few threads per core give the throughput, more only add contention and latency."))
    body_read_timeout_s: float = Field(default=30.0, gt=0, le=3600, description=(
        "A request body that sends nothing for this long is answered 408 and its connection closed."))
    header_read_timeout_s: float = Field(default=10.0, gt=0, le=3600, description=(
        "A request's line and headers must be complete this long after its first byte (or after the connection "
        "opened): a slower client is answered 408 and its connection closed (see api.http.protocol)."))
    max_queued_requests: int = Field(default=16, ge=0, le=10_000, description=(
        "Searches and matches that may wait for a worker thread; past request_threads + this many, the service "
        "answers 503 with Retry-After at once (bounded latency instead of a queue that grows with the load)."))
    # Environment shorthands (not part of the settings' JSON form)
    mmap: bool = Field(default=False, exclude=True, description="PMATCH_API_MMAP=1: memory-map the indexes.")
    max_upload_mb: float | None = Field(default=None, gt=0, exclude=True,
                                        description="PMATCH_API_MAX_UPLOAD_MB: max_upload_bytes in MiB.")

    @model_validator(mode="after")
    def _shorthands(self) -> Self:
        if self.mmap and "index_in_memory" not in self.model_fields_set:
            self.index_in_memory = False
        if self.max_upload_mb is not None and "max_upload_bytes" not in self.model_fields_set:
            self.max_upload_bytes = int(self.max_upload_mb * 2**20)
        return self
