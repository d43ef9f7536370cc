"""The HTTP service: ``create_app(workspace, settings)`` returns the FastAPI application.

Every endpoint is under ``/v1``; the OpenAPI document (``/openapi.json``, browsable at ``/docs``) is the contract.
Searching and matching endpoints are plain ``def`` functions: FastAPI runs them in its thread pool, so encoding a
query never blocks the event loop, and ``/v1/health`` (``async``) answers while searches run.

Writes (ingest, delete, rebuild) need an API key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``); reads are
open unless ``ServiceSettings.reads_need_key`` (then everything but ``/v1/health`` needs one: ``/v1/ready``,
``/docs``, ``/redoc`` and ``/openapi.json`` too). The key is checked before the body is read (``KeyGate``).
A write is followed by a background rebuild of that kind's index
(see ``matcher.reindex.Reindexer``); ``wait=true`` answers only once searches see the change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI

from api.http.errors import add_error_handlers
from api.http.links import add_links
from api.http.middleware import Backpressure, BodyLimit, KeyGate, RequestId, RequestLanguage
from api.http.routes import feeds, ingest, match, ops, records, search
from api.http.settings import ServiceSettings
from api.http.state import Service
from api.web import mount as mount_pages
from matcher.workspace import Workspace

DESCRIPTION = """
Bilingual (Chinese/English) patent supply–demand matching: search stock patents, match enterprise demands
(技术需求) to patents and patents to demands, rank enterprises for a portfolio, and load records.

* **Reads** are open unless the service is started with reads closed. **Writes** need an API key:
  `Authorization: Bearer KEY` or `X-API-Key: KEY` (create one with `pmatch keys create NAME`).
* **Errors** always have the shape `{"error": {"code", "message", "field", "details"}}`. `code` (and each
  detail's `code`) is stable; `message` and each detail's `reason` are in Chinese unless the request's
  `Accept-Language` prefers English (`Accept-Language: en`); the answer says which in `Content-Language`.
* **Pages**: `offset`/`limit` (≤ 200) over one ranked list of at most `window` results; `next_offset` is null on
  the last page. Queries are at most 2,000 characters.
* **Writes and the index**: a write is followed by a background rebuild (one at a time); searches switch to the
  new snapshot atomically. Pass `wait=true` to answer once searches see the change.
"""

READS = (search.read, match.read, records.read, ops.read, feeds.read)
WRITES = (ingest.write, ops.write, feeds.write)


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
    add_error_handlers(app)
    for router in (*READS, *WRITES, ops.ops):
        app.include_router(router)
    mount_pages(app)
    app.add_middleware(BodyLimit, limit=service.settings.max_upload_bytes,
                       read_timeout_s=service.settings.body_read_timeout_s)
    app.add_middleware(Backpressure, limit=service.settings.request_threads + service.settings.max_queued_requests,
                       in_flight=service.in_flight)
    app.add_middleware(KeyGate, write_routes=[route for router in WRITES for route in router.routes],
                       check_key=service.check_key, reads_need_key=service.settings.reads_need_key)
    app.add_middleware(RequestId)
    app.add_middleware(RequestLanguage)  # outermost: every answer below is worded in the request's language
    _document_open_reads(app, WRITES, service.settings.reads_need_key)
    return app


def _document_open_reads(app: FastAPI, writes: tuple[APIRouter, ...], reads_need_key: bool) -> None:
    """Reads take a key only when closed: when open, their OpenAPI operations list no security requirement."""
    generate = app.openapi
    write_ops = {(route.path, method.lower()) for router in writes for route in router.routes
                 for method in getattr(route, "methods", ())}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            if not reads_need_key:
                for path, operations in schema.get("paths", {}).items():
                    for method, operation in operations.items():
                        if (path, method) not in write_ops:
                            operation.pop("security", None)
            app.openapi_schema = add_links(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
