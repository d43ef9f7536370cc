"""Slow clients against a real server (``pmatch serve`` in a subprocess): sockets that send nothing, or send their
request headers a line at a time, are closed after ``header_read_timeout_s`` (issue 11, defect 6: 400 such
sockets held 25 s were never closed), while other clients are answered as usual."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx
import pytest
from api_server import running_server

from matcher.records import Demand, Patent

pytestmark = pytest.mark.e2e

TIMEOUT_S = 2.0
SILENT, TRICKLING = 200, 200  # 400 slow sockets, as in the issue


def _closed(sock: socket.socket, received: bytearray) -> bool:
    """Whether the server has closed ``sock``; what it sent is added to ``received``, kept across calls (a
    response may arrive in more than one piece, and a loaded machine reads between them)."""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_slow_header_sockets_are_closed(tmp_path: Path, sample_patents: list[Patent],
                                        sample_demands: list[Demand]) -> None:
    patents = [p for p in sample_patents if p.abstract][:40]
    env = {"PMATCH_API_HEADER_READ_TIMEOUT_S": str(TIMEOUT_S)}
    with running_server(tmp_path, patents, sample_demands[:10], env) as (server, _key):
        began = time.monotonic()
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(SILENT)]
        trickling = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(TRICKLING)]
        for sock in trickling:
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # a keep-alive client whose second request's headers trickle: the deadline applies per request
        keep_alive = socket.create_connection(("127.0.0.1", server.port))
        keep_alive.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
            first += keep_alive.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        keep_alive.sendall(b"GET /v1/health HTTP/1.1\r\n")
        trickling.append(keep_alive)
        # while they hang, another client is answered at once
        assert httpx.get(f"{server.url}/v1/health", timeout=5).status_code == 200
        open_socks = {id(s): s for s in silent + trickling}
        received = {key: bytearray() for key in open_socks}
        answers: dict[int, bytes] = {}
        while open_socks and time.monotonic() - began < TIMEOUT_S + 20:
            for sock in trickling:  # one more header line every 0.25 s: each keeps the socket busy, not alive
                if id(sock) in open_socks and not received[id(sock)]:  # not once the answer has begun
                    with contextlib.suppress(OSError):
                        sock.send(b"X-Slow: 1\r\n")
            for key, sock in list(open_socks.items()):
                if _closed(sock, received[key]):
                    answers[key] = bytes(received[key])
                    del open_socks[key]
            time.sleep(0.25)
        elapsed = time.monotonic() - began
        for sock in silent + trickling:
            sock.close()
        assert not open_socks, f"{len(open_socks)} slow sockets still open after {elapsed:.1f} s"
        assert elapsed >= TIMEOUT_S  # none closed before its time
        assert all(answers[id(s)] == b"" for s in silent)  # nothing sent: closed without a word
        partial = [answers[id(s)] for s in trickling]
        assert all(a.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in a for a in partial), partial[:2]
        assert httpx.get(f"{server.url}/v1/health", timeout=5).status_code == 200
