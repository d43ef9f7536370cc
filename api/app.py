"""The HTTP service: ``create_app(workspace, settings)`` returns the FastAPI application.

Every endpoint is under ``/v1``; the OpenAPI document (``/openapi.json``, browsable at ``/docs``) is the contract.
Searching and matching endpoints are plain ``def`` functions: FastAPI runs them in its thread pool, so encoding a
query never blocks the event loop, and ``/v1/health`` (``async``) answers while searches run. The searcher, its
snapshots and the embedder are loaded once at startup and shared by all requests.

Writes (ingest, delete, rebuild) need an API key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``); reads are
open unless ``ServiceSettings.reads_need_key``. A write is followed by a background rebuild of that kind's index
(see ``api.service.Reindexer``); ``wait=true`` answers only once searches see the change.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import schemas as s
from api.keys import KeyStore
from api.service import Reindexer
from indexes.threads import thread_report
from indexes.vector_cache import VectorCache
from matcher.config import Mode, RankerConfig, load_config
from matcher.filters import FacetIndex
from matcher.ingest import IngestError, RowError, read_file
from matcher.matching import UnknownRecord, demand_query, match_portfolio, patent_query, portfolio_ids
from matcher.records import Demand, Patent, RecordId
from matcher.search import NotIndexed, Result, Searcher, Snapshot
from matcher.store import KINDS, Kind
from matcher.workspace import Workspace

log = logging.getLogger("pmatch.api")
MAX_ERROR_DETAILS = 100
UPLOAD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".xlsx")


class ServiceSettings(BaseModel):
    """How the service runs. ``ranker`` overrides the workspace's ranker config (tests use the tiny model)."""

    ranker: RankerConfig | None = None
    reads_need_key: bool = Field(default=False, description="Close reads too: every endpoint but health needs a key.")
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
    request_threads: int = Field(default=4, ge=1, le=256, description=(
        "Requests computed at once (the thread pool's size); more wait their turn. Searches are CPU- and "
        "GIL-bound: a few threads per core give the throughput, more only add contention and latency."))

    @classmethod
    def from_env(cls) -> ServiceSettings:
        """Settings from ``PMATCH_API_READS_NEED_KEY=1``, ``PMATCH_API_MAX_UPLOAD_MB``, ``PMATCH_API_BUILD_THREADS``,
        ``PMATCH_API_THREADS`` (requests computed at once) and ``PMATCH_API_MMAP=1`` (memory-map the indexes)."""
        values: dict[str, Any] = {}
        if os.environ.get("PMATCH_API_MMAP", "").lower() in ("1", "true", "yes"):
            values["index_in_memory"] = False
        if os.environ.get("PMATCH_API_THREADS"):
            values["request_threads"] = int(os.environ["PMATCH_API_THREADS"])
        if os.environ.get("PMATCH_API_READS_NEED_KEY", "").lower() in ("1", "true", "yes"):
            values["reads_need_key"] = True
        if os.environ.get("PMATCH_API_MAX_UPLOAD_MB"):
            values["max_upload_bytes"] = int(float(os.environ["PMATCH_API_MAX_UPLOAD_MB"]) * 2**20)
        if os.environ.get("PMATCH_API_BUILD_THREADS"):
            values["build_threads"] = int(os.environ["PMATCH_API_BUILD_THREADS"])
        return cls(**values)


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: list[s.ErrorDetail] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.details = details or []
        self.headers = headers


class PayloadTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit:,} bytes")


def error_response(status: int, code: str, message: str, field: str | None = None,
                   details: list[s.ErrorDetail] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = s.ErrorResponse(error=s.ErrorInfo(code=code, message=message, field=field, details=details or []))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


# --- the service state ----------------------------------------------------------------------------------
class _PinnedSearcher(Searcher):
    """A view of a Searcher that answers every call from fixed snapshots: one consistent index per request."""

    def __init__(self, base: Searcher, pinned: dict[Kind, Snapshot]) -> None:  # shares base's store and caches
        self.__dict__.update(base.__dict__)
        self._base = base
        self._pinned = pinned

    def snapshot(self, kind: Kind) -> Snapshot:
        return self._pinned[kind] if kind in self._pinned else super().snapshot(kind)

    def vector_cache(self) -> VectorCache:
        return self._base.vector_cache()  # opened once, by the base, and closed with it


class Service:
    """What the endpoints share: one searcher (snapshots, store connection, embedder), the keys, the reindexer."""

    def __init__(self, workspace: Workspace, settings: ServiceSettings) -> None:
        self.workspace = workspace
        self.settings = settings
        self.config = settings.ranker or load_config(workspace.home)
        self.searcher = Searcher(workspace, self.config, mmap=not settings.index_in_memory)
        self.keys = KeyStore(workspace.store_path)
        self.reindexer = Reindexer(workspace, self.config, threads=settings.build_threads, nice=settings.build_nice,
                                   on_publish=lambda kind: self.warm())
        self.write_lock = threading.Lock()  # one writer at a time in this process (SQLite allows one anyway)
        self.ready = False
        self.ready_message: str | None = "starting"
        self._facets: dict[tuple[str, str], dict[str, list[s.FacetValue]]] = {}
        self._facet_lock = threading.Lock()

    @property
    def window(self) -> int:
        return self.config.candidates

    def start(self) -> None:
        self.reindexer.start()
        if self.settings.warm:
            threading.Thread(target=self.warm, name="pmatch-warm", daemon=True).start()
        else:
            self.ready, self.ready_message = True, None

    def stop(self) -> None:
        self.reindexer.stop()
        self.keys.close()
        self.searcher.close()

    def warm(self) -> None:
        """Open the served snapshots and load and exercise the embedder, so the first request is not slow."""
        missing = []
        try:
            for kind in KINDS:
                try:
                    snap = self.snapshot(kind)
                except NotIndexed:
                    if self.searcher.store.count(kind):
                        missing.append(kind)
                    continue
                mode: Mode = "hybrid" if snap.dense is not None else "bm25"
                mask = np.ones(len(snap.bm25), dtype=bool)
                self.searcher.search(snap, "锂电池 正极 battery cathode", 10, mask, mode)
        except Exception as exc:
            log.exception("warming the searcher failed")
            message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
            self.ready, self.ready_message = False, f"warm-up failed: {message}"
            return
        if missing:
            self.ready, self.ready_message = False, f"no index for {', '.join(missing)}: rebuild it"
        else:
            self.ready, self.ready_message = True, None

    def snapshot(self, kind: Kind) -> Snapshot:
        """The served snapshot; one that cannot be opened (e.g. built by an older analyzer) is a 503, not a 500."""
        try:
            return self.searcher.snapshot(kind)
        except NotIndexed:
            raise
        except Exception as exc:
            log.warning("opening the %s index failed: %s", kind, exc)
            raise ApiError(503, "index_unusable", f"the {kind} index cannot be opened ({exc}): rebuild it "
                                                  "(`pmatch index build` or POST /v1/index/rebuild)") from None

    def served(self, kind: Kind) -> s.IndexRef | None:
        manifest = self.workspace.current_manifest(kind)
        return None if manifest is None else _index_ref(manifest)

    def check_key(self, key: str | None) -> str:
        if not key:
            raise ApiError(401, "unauthorized", "an API key is required: send 'Authorization: Bearer KEY' or "
                                                "'X-API-Key: KEY' (create one with `pmatch keys create NAME`)",
                           headers={"WWW-Authenticate": "Bearer"})
        name = self.keys.verify(key)
        if name is None:
            raise ApiError(401, "unauthorized", "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return name

    def facets(self, kind: Kind, limit: int) -> tuple[s.IndexRef, dict[str, list[s.FacetValue]]]:
        """Facet counts of the served snapshot (computed once per snapshot), each list cut to ``limit``."""
        snap = self.snapshot(kind)
        key = (kind, snap.path.name)
        with self._facet_lock:
            counts = self._facets.get(key)
        if counts is None:
            counts = _facet_counts(snap.facets, kind)
            with self._facet_lock:
                self._facets = {k: v for k, v in self._facets.items() if k[0] != kind}
                self._facets[key] = counts
        return _index_ref(snap.manifest), {field: values[:limit] for field, values in counts.items()}


def _index_ref(manifest: dict[str, Any]) -> s.IndexRef:
    return s.IndexRef(name=manifest["name"], data_version=manifest["data_version"], doc_count=manifest["doc_count"])


# --- facets ---------------------------------------------------------------------------------------------
PATENT_FACETS = ("language", "applicant_type", "legal_status", "kind", "maturity", "industry", "tech_area",
                 "open_licence", "cooperation_modes", "applicants", "ipc")
DEMAND_FACETS = ("language", "industry", "region", "enterprise", "cooperation_modes")


def _prefix_counts(facets: FacetIndex, field: str, length: int) -> list[tuple[str, int]]:
    """Records per code prefix (IPC section = 1 character, subclass = 4), each record counted once per prefix."""
    values = np.asarray(facets.arrays[field])
    offsets = np.asarray(facets.arrays[f"{field}.offsets"])
    labels = sorted({v[:length] for v in facets.vocabs[field]})
    if not labels or not len(values):
        return []
    code = {label: i for i, label in enumerate(labels)}
    label_of_value = np.asarray([code[v[:length]] for v in facets.vocabs[field]], dtype=np.int64)
    owners = np.repeat(np.arange(facets.size, dtype=np.int64), np.diff(offsets))
    pairs = np.unique(owners * len(labels) + label_of_value[values])
    counts = np.bincount(pairs % len(labels), minlength=len(labels))
    return sorted(((labels[i], int(n)) for i, n in enumerate(counts) if n), key=lambda p: (-p[1], p[0]))


def _facet_counts(facets: FacetIndex, kind: Kind) -> dict[str, list[s.FacetValue]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for field in PATENT_FACETS if kind == "patents" else DEMAND_FACETS:
        out[field] = facets.counts(field)
    if kind == "patents":
        unknown = int((np.asarray(facets.arrays["legal_status"]) < 0).sum())
        if unknown:
            out["legal_status"] = sorted([*out["legal_status"], ("unknown", unknown)], key=lambda p: (-p[1], p[0]))
        out["ipc_section"] = _prefix_counts(facets, "ipc", 1)
        out["ipc_subclass"] = _prefix_counts(facets, "ipc", 4)
    return {f: [s.FacetValue(value=v, count=n) for v, n in pairs] for f, pairs in out.items()}


# --- search helpers -------------------------------------------------------------------------------------
def _ranked(service: Service, snap: Snapshot, query: str, mask: np.ndarray, mode: Mode, offset: int, limit: int,
            explain: bool) -> tuple[list[Result], s.Page, dict[str, s.Explanation]]:
    """One page of the query's ranked list (the top ``window``, computed identically for every page)."""
    window = service.window
    need = min(offset + limit, window)
    results = service.searcher.search(snap, query, need, mask, mode) if offset < window else []
    page = results[offset:]
    more = len(results) == offset + limit and offset + limit < window
    explainer = service.searcher.explainer(snap, query) if explain and page else None
    explanations = {r.id: s.Explanation.model_validate(explainer(r.record)) for r in page} if explainer else {}
    return page, s.Page(offset=offset, limit=limit, window=window, next_offset=offset + limit if more else None), \
        explanations


def _retrievers(result: Result) -> dict[str, s.RetrieverScore]:
    return {name: s.RetrieverScore.model_validate(info) for name, info in result.retrievers.items()}


HitT = TypeVar("HitT", bound=s.Hit)


def _hits(results: list[Result], explanations: dict[str, s.Explanation], hit: type[HitT]) -> list[HitT]:
    return [hit(rank=r.rank, id=r.id, score=r.score, language=r.record.language, retrievers=_retrievers(r),
                record=r.record, explanation=explanations.get(r.id)) for r in results]


def _patent_hits(results: list[Result], explanations: dict[str, s.Explanation]) -> list[s.PatentHit]:
    return _hits(results, explanations, s.PatentHit)


def _demand_hits(results: list[Result], explanations: dict[str, s.Explanation]) -> list[s.DemandHit]:
    return _hits(results, explanations, s.DemandHit)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


# --- writes ---------------------------------------------------------------------------------------------
def _row_details(errors: list[RowError], display: dict[str, str]) -> list[s.ErrorDetail]:
    return [s.ErrorDetail(field=e.field, reason=e.reason, file=display.get(e.file, e.file), line=e.line)
            for e in errors[:MAX_ERROR_DETAILS]]


def _ingest_path(service: Service, kind: Kind, path: FilePath, display: str, skip_invalid: bool, reindex: bool,
                 wait: bool, mapping: dict[str, str] | None = None, json_body: bool = False) -> s.IngestResponse:
    """Validate a file with ``matcher.ingest.read_file`` and write it in one transaction (the CLI's rules)."""
    names = {str(path): display}

    def field_of(detail: s.ErrorDetail) -> str | None:  # a JSON body's record N is records.N-1 in the request
        if not json_body or detail.line is None:
            return detail.field
        return f"records.{detail.line - 1}" + (f".{detail.field}" if detail.field else "")

    try:
        parsed = read_file(path, kind, mapping)
    except IngestError as exc:
        details = _row_details(exc.errors, names)
        raise ApiError(422, "invalid_file", _detail_text(details[0]), field_of(details[0]), details) from None
    if parsed.errors and not skip_invalid:
        details = _row_details(parsed.errors, names)
        more = f" (and {len(parsed.errors) - 1} more)" if len(parsed.errors) > 1 else ""
        raise ApiError(422, "invalid_records", f"{_detail_text(details[0])}{more}; nothing was written",
                       field_of(details[0]), details)
    if not parsed.records:
        raise ApiError(422, "invalid_records", "no valid records; nothing was written", None,
                       _row_details(parsed.errors, names))
    with service.write_lock, service.workspace.open_store() as store:
        report = store.write_batch(kind, parsed.records, display, rejected=len(parsed.rejects))
    rejects = [s.RejectedRecord(line=r.get("line"), errors=[e.replace(str(path), display) for e in r["errors"]])
               for r in parsed.rejects[:MAX_ERROR_DETAILS]]
    changed = bool(report.inserted or report.updated)
    return s.IngestResponse(report=s.BatchReport.model_validate(report.to_dict()), rejects=rejects,
                            reindex=_reindex(service, [kind], changed and reindex, wait, changed))


def _detail_text(detail: s.ErrorDetail) -> str:
    where = detail.file or ""
    if detail.line is not None:
        where += f":{detail.line}"
    return f"{where}: {detail.field}: {detail.reason}" if detail.field else f"{where}: {detail.reason}"


def _reindex(service: Service, kinds: list[Kind], run: bool, wait: bool, changed: bool = True) -> s.ReindexInfo:
    if not changed:
        return s.ReindexInfo(state="idle", kinds=kinds, message="nothing changed: no rebuild needed")
    if not run:
        return s.ReindexInfo(state="disabled", kinds=kinds, message="not rebuilt: POST /v1/index/rebuild when ready")
    tickets = service.reindexer.request(kinds)
    if not wait:
        return s.ReindexInfo(state="queued", kinds=kinds, message="a background rebuild will publish the change")
    ok, error = service.reindexer.wait(tickets, service.settings.reindex_wait_seconds)
    return s.ReindexInfo(state="published" if ok else "failed", kinds=kinds, message=error)


def _parse_multipart(content_type: str, body: bytes) -> tuple[str | None, bytes]:
    """(filename, bytes) of the ``file`` part of a multipart/form-data body (the stdlib email parser)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1") + body)
    if not message.is_multipart():
        raise ApiError(400, "invalid_upload", "malformed multipart/form-data body", "file")
    parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
    if not parts:
        raise ApiError(422, "invalid_upload", "multipart body has no 'file' part", "file")
    payload = parts[0].get_payload(decode=True)
    return parts[0].get_filename(), payload if isinstance(payload, bytes) else b""


def _safe_filename(name: str | None) -> str:
    base = FilePath((name or "").replace("\\", "/")).name.strip()
    base = re.sub(r"[^\w.\-()\u3400-\u9fff]+", "_", base)[:200]
    if not base or not base.lower().endswith(UPLOAD_SUFFIXES):
        raise ApiError(422, "invalid_upload", f"filename {name!r}: give a name ending in one of "
                                              f"{', '.join(UPLOAD_SUFFIXES)} (it tells the format)", "filename")
    return base


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ApiError(422, "validation_error", f"map takes COLUMN=field (or COLUMN= to ignore), not {pair!r}",
                           "map")
        column, field = pair.split("=", 1)
        out[column.strip()] = field.strip()
    return out


# --- dependencies ---------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    return header or (bearer.credentials if bearer is not None else None)


def write_access(service: Annotated[Service, Depends(get_service)],
                 bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                 header: Annotated[str | None, Depends(_api_key)]) -> str:
    return service.check_key(_presented_key(bearer, header))


def read_access(service: Annotated[Service, Depends(get_service)],
                bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                header: Annotated[str | None, Depends(_api_key)]) -> None:
    if service.settings.reads_need_key:
        service.check_key(_presented_key(bearer, header))


ServiceDep = Annotated[Service, Depends(get_service)]
WriteKey = Annotated[str, Depends(write_access)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorResponse, "description": text} for code, text in (
        (400, "Malformed request"), (401, "API key missing or invalid"), (404, "Unknown id"),
        (413, "Request body too large"), (422, "Invalid field (named in error.field)"),
        (503, "Index not built or service not ready"))
}

read = APIRouter(prefix="/v1", dependencies=[Depends(read_access)], responses=ERRORS)
write = APIRouter(prefix="/v1", responses=ERRORS)
ops = APIRouter(prefix="/v1", tags=["operations"])


# --- search ---------------------------------------------------------------------------------------------
def _search(service: Service, kind: Kind, req: s.PatentSearchRequest | s.DemandSearchRequest,
            mask: Callable[[Snapshot], np.ndarray]) -> tuple[Snapshot, Mode, list[Result], s.Page,
                                                              dict[str, s.Explanation]]:
    snap = service.snapshot(kind)
    mode = req.mode or service.config.mode
    page, info, expl = _ranked(service, snap, req.query, mask(snap), mode, req.offset, req.limit, req.explain)
    return snap, mode, page, info, expl


def _search_patents(service: Service, req: s.PatentSearchRequest) -> s.PatentSearchResponse:
    started = time.perf_counter()
    snap, mode, page, info, expl = _search(service, "patents", req, lambda sn: sn.facets.patent_mask(req.filters))
    return s.PatentSearchResponse(query=req.query, mode=mode, page=info, index=_index_ref(snap.manifest),
                                  results=_patent_hits(page, expl), took_ms=_ms(started))


@read.post("/search/patents", tags=["search"], summary="Search patents by free text, with filters")
def search_patents_post(service: ServiceDep, req: s.PatentSearchRequest) -> s.PatentSearchResponse:
    """Free text in Chinese or English; every filter of ``PatentFilters``; ``mode`` bm25, dense or hybrid; one page
    (``offset``/``limit``) of the ranked list; ``explain`` adds matched terms, snippets and the closest sentence."""
    return _search_patents(service, req)


@read.get("/search/patents", tags=["search"], summary="Search patents (query-string form)")
def search_patents_get(service: ServiceDep, params: Annotated[s.PatentSearchQuery, Query()]) -> s.PatentSearchResponse:
    """The same search as POST, with the filters as query parameters: ``?q=锂电池&ipc=H01M&ipc=H01G&limit=20``."""
    try:
        req = params.request()
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None
    return _search_patents(service, req)


@read.post("/search/demands", tags=["search"], summary="Search demands by free text, with filters")
def search_demands(service: ServiceDep, req: s.DemandSearchRequest) -> s.DemandSearchResponse:
    started = time.perf_counter()
    snap, mode, page, info, expl = _search(service, "demands", req, lambda sn: sn.facets.demand_mask(req.filters))
    return s.DemandSearchResponse(query=req.query, mode=mode, page=info, index=_index_ref(snap.manifest),
                                  results=_demand_hits(page, expl), took_ms=_ms(started))


# --- matching -------------------------------------------------------------------------------------------
@read.post("/match/demand", tags=["match"], summary="Patents that answer a demand (stored or inline)")
def match_demand(service: ServiceDep, req: s.MatchDemandRequest) -> s.PatentMatchResponse:
    started = time.perf_counter()
    if (req.demand_id is None) == (req.demand is None):
        raise ApiError(422, "validation_error", "give exactly one of demand_id and demand", "demand_id")
    demand = req.demand
    if req.demand_id is not None:
        found = service.searcher.store.get("demands", req.demand_id)
        if not isinstance(found, Demand):
            raise ApiError(404, "not_found", f"no demand with id {req.demand_id!r}", "demand_id")
        demand = found
    assert demand is not None
    snap = service.snapshot("patents")
    mode = req.mode or service.config.mode
    page, info, expl = _ranked(service, snap, demand_query(demand), snap.facets.patent_mask(req.filters), mode,
                               req.offset, req.limit, req.explain)
    return s.PatentMatchResponse(demand=demand, mode=mode, page=info, index=_index_ref(snap.manifest),
                                 results=_patent_hits(page, expl), took_ms=_ms(started))


@read.post("/match/patent", tags=["match"], summary="Demands (enterprises) a patent could serve")
def match_patent(service: ServiceDep, req: s.MatchPatentRequest) -> s.DemandMatchResponse:
    started = time.perf_counter()
    patent = service.searcher.store.get("patents", req.patent_id)
    if not isinstance(patent, Patent):
        raise ApiError(404, "not_found", f"no patent with id {req.patent_id!r}", "patent_id")
    snap = service.snapshot("demands")
    mode = req.mode or service.config.mode
    query = patent_query(patent, service.config.dense_text_chars)
    page, info, expl = _ranked(service, snap, query, snap.facets.demand_mask(req.filters), mode, req.offset,
                               req.limit, req.explain)
    return s.DemandMatchResponse(patent=patent, mode=mode, page=info, index=_index_ref(snap.manifest),
                                 results=_demand_hits(page, expl), took_ms=_ms(started))


@read.post("/match/portfolio", tags=["match"], summary="Enterprises whose demands fit a portfolio")
def match_portfolio_endpoint(service: ServiceDep, req: s.PortfolioRequest) -> s.PortfolioResponse:
    """Each patent of the portfolio is matched to demands; demands are grouped per enterprise, which is scored by
    its best three (patent, demand) matches weighted 1, 1/2, 1/4. All matches use one snapshot."""
    started = time.perf_counter()
    if bool(req.patent_ids) == bool(req.applicant):
        raise ApiError(422, "validation_error", "give exactly one of patent_ids and applicant", "patent_ids")
    field = "patent_ids" if req.patent_ids else "applicant"
    try:
        ids = portfolio_ids(service.searcher, req.applicant, req.patent_ids or None)
    except UnknownRecord as exc:
        raise ApiError(404, "not_found", str(exc), field) from None
    if len(ids) > service.settings.max_portfolio_patents:
        raise ApiError(422, "too_many_patents", f"the portfolio has {len(ids)} patents; at most "
                       f"{service.settings.max_portfolio_patents}: narrow the applicant or pass patent_ids", field)
    pinned = _PinnedSearcher(service.searcher, {"demands": service.snapshot("demands")})
    mode = req.mode or service.config.mode
    matches = match_portfolio(pinned, ids, req.offset + req.limit, req.per_patent, req.per_enterprise, req.filters,
                              mode)
    page = matches[req.offset:]
    enterprises = [s.EnterpriseMatch(rank=req.offset + i, **m.to_dict()) for i, m in enumerate(page, 1)]
    more = len(matches) == req.offset + req.limit
    return s.PortfolioResponse(patents=ids, mode=mode, offset=req.offset, limit=req.limit,
                               next_offset=req.offset + req.limit if more else None, enterprises=enterprises,
                               took_ms=_ms(started))


# --- records and facets ---------------------------------------------------------------------------------
RecordT = TypeVar("RecordT", s.PatentRecord, s.DemandRecord)


def _stored(service: Service, kind: Kind, record_id: str, answer: type[RecordT]) -> RecordT:
    """The stored record of ``kind`` by id or alias, or a 404 naming the id."""
    record = service.searcher.store.get(kind, record_id)
    if record is None:
        noun = kind[:-1]
        raise ApiError(404, "not_found", f"no {noun} with id {record_id!r}", f"{noun}_id")
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


@read.get("/index/status", tags=["index"], summary="Background rebuilds and the served snapshots")
def index_status(service: ServiceDep) -> s.IndexStatusResponse:
    builds = {k: s.KindBuildStatus.model_validate(v) for k, v in service.reindexer.status().items()}
    return s.IndexStatusResponse(builds=builds, served={k: service.served(k) for k in KINDS})


# --- writes ---------------------------------------------------------------------------------------------
Reindex = Annotated[bool, Query(description="Rebuild the index after the write (false: batch several writes, "
                                            "then POST /v1/index/rebuild).")]
Wait = Annotated[bool, Query(description="Answer once the rebuilt index is published (searches see the change).")]


def _ingest_json(service: Service, kind: Kind, body: s.IngestRequest, reindex: bool, wait: bool) -> s.IngestResponse:
    with tempfile.TemporaryDirectory(prefix="pmatch-ingest-") as tmp:
        path = FilePath(tmp) / "records.json"
        # ASCII escapes: no raw U+2028 and friends that a line splitter would take for line ends
        path.write_text(json.dumps(body.records, ensure_ascii=True, default=str), "utf-8")
        return _ingest_path(service, kind, path, "records", body.skip_invalid, reindex, wait, json_body=True)


def _ingest_bytes(service: Service, kind: Kind, data: bytes, filename: str, skip_invalid: bool, reindex: bool,
                  wait: bool, mapping: dict[str, str]) -> s.IngestResponse:
    with tempfile.TemporaryDirectory(prefix="pmatch-upload-") as tmp:
        path = FilePath(tmp) / filename
        path.write_bytes(data)
        return _ingest_path(service, kind, path, filename, skip_invalid, reindex, wait, mapping)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _delete(service: Service, kind: Kind, ids: list[str], reindex: bool, wait: bool) -> s.DeleteResponse:
    with service.write_lock, service.workspace.open_store() as store:
        deleted = store.delete(kind, ids)
    missing = [i for i in ids if i not in set(deleted)]
    return s.DeleteResponse(deleted=deleted, missing=missing,
                            reindex=_reindex(service, [kind], bool(deleted) and reindex, wait, bool(deleted)))


def _write_routes(kind: Kind, examples: dict[str, Any]) -> None:
    upload_body = {"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
    }}}

    def ingest_json(service: ServiceDep, _key: WriteKey, body: s.IngestRequest, reindex: Reindex = True,
                    wait: Wait = False) -> s.IngestResponse:
        return _ingest_json(service, kind, body, reindex, wait)

    async def ingest_file(request: Request, service: ServiceDep, _key: WriteKey,
                          filename: Annotated[str | None, Query(max_length=255, description=(
                              "The file's name; its extension gives the format (.jsonl .json .csv .tsv .xlsx). "
                              "Needed for a raw body; a multipart part's own filename is used otherwise."))] = None,
                          skip_invalid: bool = False,
                          map_: Annotated[list[str], Query(alias="map", description="COLUMN=field, or COLUMN= to "
                                                                                    "ignore a column")] = [],  # noqa: B006
                          reindex: Reindex = True, wait: Wait = False) -> s.IngestResponse:
        data = await _read_body(request, service.settings.max_upload_bytes)
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            part_name, data = _parse_multipart(content_type, data)
            filename = filename or part_name
        name = _safe_filename(filename)
        if not data:
            raise ApiError(422, "invalid_upload", "empty upload: no records", "file")
        return await run_in_threadpool(_ingest_bytes, service, kind, data, name, skip_invalid, reindex, wait,
                                       _mapping(map_))

    def delete_many(service: ServiceDep, _key: WriteKey, body: s.DeleteRequest, reindex: Reindex = True,
                    wait: Wait = False) -> s.DeleteResponse:
        return _delete(service, kind, list(dict.fromkeys(body.ids)), reindex, wait)

    tags = ["ingest"]
    write.post(f"/ingest/{kind}", tags=tags, summary=f"Ingest {kind} as JSON records (all or nothing)",
               operation_id=f"ingest_{kind}", openapi_extra=_body_examples(examples))(ingest_json)
    write.post(f"/ingest/{kind}/file", tags=tags, summary=f"Ingest a file of {kind} (JSONL, JSON, CSV, TSV, XLSX)",
               operation_id=f"ingest_{kind}_file", openapi_extra=upload_body,
               description="Send the file as the raw body with `?filename=`, or as multipart/form-data field "
                           "`file`. Same rules as `pmatch ingest`: errors name the file, line and field.")(ingest_file)
    write.post(f"/delete/{kind}", tags=tags, summary=f"Delete {kind} by id",
               operation_id=f"delete_{kind}")(delete_many)


def _delete_one(service: Service, kind: Kind, record_id: str, reindex: bool, wait: bool) -> s.DeleteResponse:
    result = _delete(service, kind, [record_id], reindex, wait)
    if not result.deleted:
        noun = kind[:-1]
        canonical = service.searcher.store.resolve(kind, record_id)
        hint = f" ({record_id!r} is a duplicate of {canonical!r}: delete that)" if canonical else ""
        raise ApiError(404, "not_found", f"no {noun} with id {record_id!r}{hint}", f"{noun}_id")
    return result


@write.delete("/patents/{patent_id}", tags=["ingest"], summary="Delete a patent")
def delete_patent(service: ServiceDep, _key: WriteKey, patent_id: RecordId, reindex: Reindex = True,
                  wait: Wait = False) -> s.DeleteResponse:
    return _delete_one(service, "patents", patent_id, reindex, wait)


@write.delete("/demands/{demand_id}", tags=["ingest"], summary="Delete a demand")
def delete_demand(service: ServiceDep, _key: WriteKey, demand_id: RecordId, reindex: Reindex = True,
                  wait: Wait = False) -> s.DeleteResponse:
    return _delete_one(service, "demands", demand_id, reindex, wait)


def _body_examples(examples: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"examples": examples}}}}


_write_routes("patents", s.PATENT_INGEST_EXAMPLES)
_write_routes("demands", s.DEMAND_INGEST_EXAMPLES)


@write.post("/index/rebuild", tags=["index"], summary="Rebuild indexes in the background")
def rebuild(service: ServiceDep, _key: WriteKey, req: s.RebuildRequest) -> s.ReindexInfo:
    """Builds run one at a time; requests made during a build are coalesced into one more build."""
    kinds: list[Kind] = list(dict.fromkeys(req.kinds))
    return _reindex(service, kinds, True, req.wait)


# --- operations -----------------------------------------------------------------------------------------
@ops.get("/health", summary="Liveness: the process answers")
async def health() -> s.HealthResponse:
    return s.HealthResponse()


@ops.get("/ready", summary="Readiness: indexes and model loaded", response_model=s.ReadyResponse,
         responses={503: {"model": s.ReadyResponse, "description": "Not ready yet (or an index is missing)"}})
async def ready(service: ServiceDep) -> JSONResponse:
    indexes = {k: (ref.name if (ref := service.served(k)) else None) for k in KINDS}
    body = s.ReadyResponse(ready=service.ready, indexes=indexes, model=service.config.dense_model,
                           message=service.ready_message)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if service.ready else 503)


@read.get("/stats", tags=["operations"], summary="Record counts, index versions, model, limits")
def stats(service: ServiceDep) -> s.StatsResponse:
    store = service.searcher.store
    version = store.data_version
    indexes: dict[str, s.IndexStats | None] = {}
    model: dict[str, Any] | None = None
    for kind in KINDS:
        manifest = service.workspace.current_manifest(kind)
        if manifest is None:
            indexes[kind] = None
            continue
        dense = manifest["components"].get("dense")
        indexes[kind] = s.IndexStats(
            name=manifest["name"], data_version=manifest["data_version"], doc_count=manifest["doc_count"],
            built_at=manifest["built_at"], stale=manifest["data_version"] != version,
            dense_model=dense["metadata"]["model"] if dense else None, manifest=manifest)
        if dense and model is None:
            model = {k: dense["metadata"].get(k) for k in ("model", "fingerprint", "dim", "text_chars")}
    builds = {k: s.KindBuildStatus.model_validate(v) for k, v in service.reindexer.status().items()}
    return s.StatsResponse(
        records={k: store.count(k) for k in KINDS}, data_version=version, indexes=indexes, builds=builds, model=model,
        ranker=service.config.model_dump(), threads=thread_report(), api_keys=service.keys.active_count(),
        index_in_memory=not service.searcher.mmap,
        reads_need_key=service.settings.reads_need_key,
        limits={"max_query_chars": s.MAX_QUERY_CHARS, "max_limit": s.MAX_LIMIT, "window": service.window,
                "max_upload_bytes": service.settings.max_upload_bytes, "max_ingest_records": s.MAX_INGEST_RECORDS,
                "max_portfolio_patents": service.settings.max_portfolio_patents})


# --- errors and middleware ------------------------------------------------------------------------------
def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or None


def _validation_message(err: dict[str, Any]) -> str:
    return str(err.get("msg", "invalid value")).removeprefix("Value error, ")


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    details = [s.ErrorDetail(field=_field(e.get("loc", ())), reason=_validation_message(e))
               for e in errors[:MAX_ERROR_DETAILS]]
    if any(e.get("type") == "json_invalid" for e in errors):
        where = next((e["loc"][-1] for e in errors if e.get("type") == "json_invalid" and e.get("loc")), None)
        at = f" at character {where}" if isinstance(where, int) else ""
        return error_response(400, "invalid_json", f"the body is not valid JSON{at}",
                              details=[s.ErrorDetail(reason=f"invalid JSON{at}")])
    first = details[0] if details else s.ErrorDetail(reason="invalid request")
    message = f"{first.field}: {first.reason}" if first.field else first.reason
    return error_response(422, "validation_error", message, first.field, details)


async def _on_api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.details, exc.headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _on_not_indexed(request: Request, exc: NotIndexed) -> JSONResponse:
    return error_response(503, "not_indexed", str(exc))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.headers.get("x-request-id") or getattr(request.state, "request_id", "-")
    log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return error_response(500, "internal_error", f"internal error (request id {request_id}); it has been logged")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes (413 in the error shape), by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = error_response(413, "payload_too_large", f"request body larger than {self.limit:,} bytes")
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


class RequestId:
    """Give every response an ``X-Request-ID`` (the client's, or a new one) to find it in the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"")
        request_id = given.decode("latin-1")[:64] if given else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, with_id)


DESCRIPTION = """
Bilingual (Chinese/English) patent supply–demand matching: search stock patents, match enterprise demands
(技术需求) to patents and patents to demands, rank enterprises for a portfolio, and load records.

* **Reads** are open unless the service is started with reads closed. **Writes** need an API key:
  `Authorization: Bearer KEY` or `X-API-Key: KEY` (create one with `pmatch keys create NAME`).
* **Errors** always have the shape `{"error": {"code", "message", "field", "details"}}`.
* **Pages**: `offset`/`limit` (≤ 200) over one ranked list of at most `window` results; `next_offset` is null on
  the last page. Queries are at most 2,000 characters.
* **Writes and the index**: a write is followed by a background rebuild (one at a time); searches switch to the
  new snapshot atomically. Pass `wait=true` to answer once searches see the change.
"""


def create_app(workspace: Workspace, settings: ServiceSettings | None = None) -> FastAPI:
    """The application over ``workspace``; the searcher, model and indexes load at startup (see /v1/ready)."""
    service = Service(workspace, settings or ServiceSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = service.settings.request_threads
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="patent-match", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    handlers: dict[Any, Callable[..., Any]] = {
        RequestValidationError: _on_validation, ApiError: _on_api_error, StarletteHTTPException: _on_http_error,
        NotIndexed: _on_not_indexed, Exception: _on_unexpected,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
    app.add_middleware(BodyLimit, limit=service.settings.max_upload_bytes)
    app.add_middleware(RequestId)
    for router in (read, write, ops):
        app.include_router(router)
    _document_open_reads(app, service.settings.reads_need_key)
    return app


def _document_open_reads(app: FastAPI, reads_need_key: bool) -> None:
    """Reads take a key only when closed: when open, their OpenAPI operations list no security requirement."""
    generate = app.openapi
    writes = {(route.path, method.lower()) for route in write.routes for method in getattr(route, "methods", ())}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            if not reads_need_key:
                for path, operations in schema.get("paths", {}).items():
                    for method, operation in operations.items():
                        if (path, method) not in writes:
                            operation.pop("security", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
