"""Errors answered in one shape, ``{"error": {"code", "message", "field", "details"}}``, and their handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http import schemas as s
from api.http.language import lang_of, say, words
from matcher.i18n import Message
from matcher.reasons import reason
from matcher.search import NotIndexed

log = logging.getLogger("pmatch.api")
MAX_ERROR_DETAILS = 100


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with ``status``; a catalogue ``Message`` is worded in the
    request's language (``api.http.language``) when answered."""

    def __init__(self, status: int, code: str, message: Message | str, field: str | None = None,
                 details: list[s.ErrorDetail] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(message))
        self.status, self.code, self.field = status, code, field
        self.words = message
        self.details = details or []
        self.headers = headers

    @property
    def message(self) -> str:
        """The message in the language being spoken (``words``)."""
        return words(self.words)


class PayloadTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        self.words = Message("http.payload_too_large", limit=f"{limit:,}")
        super().__init__(413, self.words.text("en"))


def error_response(status: int, code: str, message: Message | str, field: str | None = None,
                   details: list[s.ErrorDetail] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = s.ErrorResponse(error=s.ErrorInfo(code=code, message=words(message), field=field, details=details or []))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


# The error responses every read or write endpoint documents in OpenAPI.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorResponse, "description": text} for code, text in (
        (400, "Malformed request"), (401, "API key missing or invalid"), (404, "Unknown id"),
        (413, "Request body too large"), (422, "Invalid field (named in error.field)"),
        (503, "Index not built or service not ready"))
}


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or None


def detail_of(err: dict[str, Any]) -> s.ErrorDetail:
    """A pydantic error as an error detail: its field, its reason in the request's language, its stable code."""
    why = reason(err)
    return s.ErrorDetail(field=_field(err.get("loc", ())), reason=words(why), code=why.key.rsplit(".", 1)[-1])


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    details = [detail_of(e) for e in errors[:MAX_ERROR_DETAILS]]
    if any(e.get("type") == "json_invalid" for e in errors):
        where = next((e["loc"][-1] for e in errors if e.get("type") == "json_invalid" and e.get("loc")), None)
        message = say("http.invalid_json_at", position=where) if isinstance(where, int) else say("http.invalid_json")
        return error_response(400, "invalid_json", message,
                              details=[s.ErrorDetail(reason=message, code="json_invalid")])
    first = details[0] if details else s.ErrorDetail(reason=say("http.invalid_request"))
    message = f"{first.field}: {first.reason}" if first.field else first.reason
    return error_response(422, "validation_error", message, first.field, details)


async def _on_api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.words, exc.field, exc.details, exc.headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 408: "request_timeout",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message: Message | str = getattr(exc, "words", None) or (exc.detail if isinstance(exc.detail, str)
                                                             else str(exc.detail))
    if exc.status_code == 404 and message == "Not Found":
        message = Message("http.no_endpoint", method=request.method, path=request.url.path)
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = Message("http.method_not_allowed", method=request.method, path=request.url.path)
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _on_not_indexed(request: Request, exc: NotIndexed) -> JSONResponse:
    return error_response(503, "not_indexed", Message("http.not_indexed", detail=exc.as_message()))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.headers.get("x-request-id") or getattr(request.state, "request_id", "-")
    log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    # answered outside the middleware stack: the language from the header itself
    message = Message("http.internal_error", request_id=request_id).text(lang_of(request.scope))
    return error_response(500, "internal_error", message)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one error shape (validation, ours, HTTP, not indexed, unexpected)."""
    handlers: dict[Any, Callable[..., Any]] = {
        RequestValidationError: _on_validation, ApiError: _on_api_error, StarletteHTTPException: _on_http_error,
        NotIndexed: _on_not_indexed, Exception: _on_unexpected,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
