"""API keys on requests: writes always need one (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``); reads only
when the service runs with ``reads_need_key``. Routers of each kind come from here, with their dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.http.errors import ERRORS, ApiError
from api.http.state import ServiceDep

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    return header or (bearer.credentials if bearer is not None else None)


def write_access(service: ServiceDep, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                 header: Annotated[str | None, Depends(_api_key)]) -> str:
    if not service.settings.writer:
        raise ApiError(403, "read_replica", "this replica serves reads only: send writes to the workspace's writer "
                                            "(the replica started without PMATCH_API_WRITER=0)")
    return service.check_key(_presented_key(bearer, header))


def read_access(service: ServiceDep, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                header: Annotated[str | None, Depends(_api_key)]) -> None:
    if service.settings.reads_need_key:
        service.check_key(_presented_key(bearer, header))


WriteKey = Annotated[str, Depends(write_access)]


def read_router() -> APIRouter:
    """Endpoints that read: open, or behind a key when reads are closed."""
    return APIRouter(prefix="/v1", dependencies=[Depends(read_access)], responses=ERRORS)


def write_router() -> APIRouter:
    """Endpoints that write: each takes a ``WriteKey`` parameter."""
    return APIRouter(prefix="/v1", responses=ERRORS)
