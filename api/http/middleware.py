"""ASGI middleware of the service: the API key checked before any body is read, a request-body limit, a request id
on every response, and the request's language from ``Accept-Language`` (the context it sets: ``api.http.language``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import anyio
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.errors import ApiError, PayloadTooLarge, error_response
from api.http.language import lang_of, speaking
from matcher.i18n import Message as Words

OPEN_PATHS = ("/v1/health",)  # answered to anyone, even with reads closed
DOC_PATHS = ("/docs", "/redoc", "/openapi.json")  # closed with the reads (the web page has its own login)
QUEUED_PREFIXES = ("/v1/search/", "/v1/match/")  # the requests that compete for the worker threads


class InFlight:
    """How many searches and matches the server holds now (``Backpressure`` counts them; the standing-match worker
    reads ``busy`` to yield to them). Changed on the event loop only; read from any thread."""

    def __init__(self) -> None:
        self.held = 0

    def busy(self) -> bool:
        return self.held > 0


class Backpressure:
    """Bound the searches and matches a server holds: at most ``limit`` at once (computing or waiting for one of the
    ``request_threads``); one more is answered 503 with ``Retry-After`` at once instead of joining a queue whose
    wait grows without limit. Health, readiness and everything else pass untouched (they never queue here, and
    ``/v1/health`` and ``/v1/ready`` are ``async``: they are answered on the event loop, off the worker threads)."""

    def __init__(self, app: ASGIApp, limit: int, in_flight: InFlight | None = None, retry_after_s: int = 1) -> None:
        self.app, self.limit, self.retry_after_s = app, limit, retry_after_s
        self.in_flight = in_flight or InFlight()
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(QUEUED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.in_flight.held >= self.limit:  # one event loop: this check and the increment below do not interleave
            self.shed += 1
            response = error_response(503, "overloaded", Words("http.overloaded", limit=self.limit,
                                                               seconds=self.retry_after_s),
                                      headers={"Retry-After": str(self.retry_after_s)})
            await response(scope, receive, send)
            return
        self.in_flight.held += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.held -= 1


class KeyGate:
    """Check the API key from the headers alone, before the endpoint reads (or parses) a byte of the body: an
    anonymous 45 MB upload costs nothing, and a keyless invalid body is a 401, not a 400. Writes (``write_routes``)
    always need a key; with ``reads_need_key`` every ``/v1`` path does (``/v1/ready`` too) except ``OPEN_PATHS``,
    and so do ``/docs``, ``/redoc`` and ``/openapi.json`` (the web page asks for the key with its own login form)."""

    def __init__(self, app: ASGIApp, write_routes: Sequence[BaseRoute], check_key: Callable[[str | None], str],
                 reads_need_key: bool) -> None:
        self.app, self.write_routes, self.check_key, self.reads_need_key = app, write_routes, check_key, reads_need_key

    def _needs_key(self, scope: Scope) -> bool:
        if scope["path"] in OPEN_PATHS:
            return False
        if self.reads_need_key and (scope["path"].startswith("/v1/") or scope["path"].startswith(DOC_PATHS)):
            return True
        return any(route.matches(scope)[0] == Match.FULL for route in self.write_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_key(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        key = headers.get(b"x-api-key", b"").decode("latin-1").strip() or None
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if key is None and authorization[:7].lower() == "bearer ":
            key = authorization[7:].strip() or None
        try:
            self.check_key(key)
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.words, exc.field, headers=exc.headers)(scope, receive,
                                                                                                    send)
            return
        await self.app(scope, receive, send)


class BodyTimeout(StarletteHTTPException):
    def __init__(self, seconds: float) -> None:
        self.words = Words("http.body_timeout", seconds=f"{seconds:g}")
        super().__init__(408, self.words.text("en"))


class BodyLimit:
    """Refuse bodies over ``limit`` bytes (413 in the error shape), by Content-Length or while streaming, and bodies
    that stall: no bytes for ``read_timeout_s`` between two chunks is a 408 (a slow client cannot hold a worker)."""

    def __init__(self, app: ASGIApp, limit: int, read_timeout_s: float = 30.0) -> None:
        self.app, self.limit, self.read_timeout_s = app, limit, read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            too_large = Words("http.payload_too_large", limit=f"{self.limit:,}")
            response = error_response(413, "payload_too_large", too_large)
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            try:
                with anyio.fail_after(self.read_timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.read_timeout_s) from None
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


class RequestLanguage:
    """Set the request's language from ``Accept-Language`` and say it in ``Content-Language``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lang = lang_of(scope)
        api = scope["path"].startswith("/v1/")  # the pages say their own language (the page's switch)

        async def with_language(message: Message) -> None:
            if message["type"] == "http.response.start" and api:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"content-language" for name, _ in headers):
                    headers.append((b"content-language", lang.encode("ascii")))
                message["headers"] = headers
            await send(message)

        with speaking(lang):
            await self.app(scope, receive, with_language)
