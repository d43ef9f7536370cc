"""The HTTP/1.1 connection protocol the server runs: uvicorn's h11 protocol with a deadline for a request's headers.

uvicorn closes an idle keep-alive connection, but a connection that sends nothing, or sends its request line and
headers a byte at a time, is held for ever: 400 such sockets held 25 s were never closed (issue 11, defect 6).
``HeaderTimeoutProtocol`` gives every request ``header_read_timeout_s`` from its first byte (or from the
connection's opening, for the first request) until its headers are complete; past it the connection is closed,
with a 408 in the service's error shape when part of a request had arrived. The body has its own timeout
(``BodyLimit`` in ``api.http.middleware``); the time between requests is uvicorn's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
IMPORT_PATH = "api.http.protocol:HeaderTimeoutProtocol"  # uvicorn's ``http=`` option, also in worker processes


def _timeout_response(seconds: float) -> bytes:
    from matcher.i18n import DEFAULT_LANG, text  # the headers (and Accept-Language) never arrived

    body = json.dumps({"error": {"code": "request_timeout", "field": None, "details": [],
                                 "message": text("http.header_timeout", DEFAULT_LANG, seconds=f"{seconds:g}")}},
                      ensure_ascii=False).encode("utf-8")
    head = (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode("ascii")
    return head + body


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's ``H11Protocol``; a request whose headers are not complete ``header_timeout_s`` after its first byte
    (or after the connection opened) closes the connection."""

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S  # set by ``api.http.server`` from the service settings
    closed_for_slow_headers = 0  # connections closed by the deadline in this process (for logs and tests)

    _header_timer: asyncio.TimerHandle | None = None
    _partial = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE  # no request line and headers yet in this cycle
        if waiting and self._header_timer is None:
            self._arm()  # a keep-alive connection starts its next request: its headers get the same deadline
        self._partial = waiting
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # headers complete (or the connection failed): disarm
            self._disarm()
            self._partial = False

    def on_response_complete(self) -> None:
        self._disarm()  # between requests, uvicorn's keep-alive timeout applies
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._on_header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        type(self).closed_for_slow_headers += 1
        if self._partial:
            self.transport.write(_timeout_response(self.header_timeout_s))
        self.transport.close()
