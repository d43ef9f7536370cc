"""Operations: ``/v1/health``, ``/v1/ready``, ``/v1/stats``, ``/v1/index/status`` and ``/v1/index/rebuild``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.http import schemas as s
from api.http.security import WriteKey, read_router, write_router
from api.http.state import ServiceDep
from indexes.threads import thread_report
from matcher.store import COLLECTIONS, Collection

read = read_router()
write = write_router()
ops = APIRouter(prefix="/v1", tags=["operations"])


@read.get("/index/status", tags=["index"], summary="Background rebuilds and the served snapshots")
def index_status(service: ServiceDep) -> s.IndexStatusResponse:
    builds = {k: s.KindBuildStatus.model_validate(v) for k, v in service.reindexer.status().items()}
    return s.IndexStatusResponse(builds=builds, served={k: service.served(k) for k in COLLECTIONS},
                                 segments={k: service.segments(k) for k in COLLECTIONS})


@write.post("/index/rebuild", tags=["index"], summary="Rebuild indexes in the background")
def rebuild(service: ServiceDep, _key: WriteKey, req: s.RebuildRequest) -> s.ReindexInfo:
    """Builds run one at a time; requests made during a build are coalesced into one more build."""
    kinds: list[Collection] = list(dict.fromkeys(req.kinds))
    return service.reindex(kinds, True, req.wait, full=True)


@ops.get("/health", summary="Liveness: the process answers")
async def health() -> s.HealthResponse:
    return s.HealthResponse()


@ops.get("/ready", summary="Readiness: indexes and model loaded", response_model=s.ReadyResponse,
         responses={503: {"model": s.ReadyResponse, "description": "Not ready yet (or an index is missing)"}})
async def ready(service: ServiceDep) -> JSONResponse:
    indexes = {k: (ref.name if (ref := service.served(k)) else None) for k in COLLECTIONS}
    body = s.ReadyResponse(ready=service.ready, indexes=indexes, model=service.config.dense_model,
                           message=service.ready_message)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if service.ready else 503)


@read.get("/stats", tags=["operations"], summary="Record counts, index versions, model, limits")
def stats(service: ServiceDep) -> s.StatsResponse:
    store = service.searcher.store
    version = store.data_version
    indexes: dict[str, s.IndexStats | None] = {}
    model: dict[str, Any] | None = None
    for kind in COLLECTIONS:
        manifest = service.workspace.current_manifest(kind)
        if manifest is None:
            indexes[kind] = None
            continue
        dense = manifest.dense
        indexes[kind] = s.IndexStats(
            name=manifest.name, data_version=manifest.data_version, doc_count=manifest.doc_count,
            built_at=manifest.built_at, stale=manifest.data_version != version,
            dense_model=dense.model if dense else None, manifest=manifest.model_dump(mode="json"))
        if dense and model is None:
            model = dense.model_dump(include={"model", "fingerprint", "dim", "text_chars"})
    builds = {k: s.KindBuildStatus.model_validate(v) for k, v in service.reindexer.status().items()}
    return s.StatsResponse(
        records={k: store.count(k) for k in COLLECTIONS}, data_version=version, indexes=indexes, builds=builds,
        model=model,
        ranker=service.config.model_dump(), threads=thread_report(), api_keys=service.keys.active_count(),
        index_in_memory=not service.searcher.mmap,
        reads_need_key=service.settings.reads_need_key,
        limits={"max_query_chars": s.MAX_QUERY_CHARS, "max_limit": s.MAX_LIMIT, "window": service.candidates,
                "max_upload_bytes": service.settings.max_upload_bytes, "max_ingest_records": s.MAX_INGEST_RECORDS,
                "max_portfolio_patents": service.settings.max_portfolio_patents})
