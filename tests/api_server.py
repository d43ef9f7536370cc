"""A real HTTP server for tests: a workspace built from a slice of the bundled data (static-64 model) and
``python -m api.cli serve`` (``pmatch serve``) on a free 127.0.0.1 port. conftest.py starts one per session
(``live_server``), shared by the real-server tests of test_api.py and the schemathesis run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.http.keys import keys_create
from matcher.full_build import build_snapshot
from matcher.records import Demand, Patent
from matcher.store import Store
from matcher.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
BATTERY = re.compile(r"电池|正极|负极|锂")
QUERY = "锂离子电池 正极材料"
RANKER = {"dense_model": "static-64", "candidates": 50}


def corpus(patents: list[Patent]) -> tuple[list[Patent], list[Patent]]:
    """(indexed, held back): Chinese battery and other patents, English NVIDIA ones; some battery ones held back."""
    battery = [p for p in patents if p.language == "zh" and p.abstract and BATTERY.search(p.title + p.abstract)]
    zh_other = [p for p in patents if p.language == "zh" and p.abstract and not BATTERY.search(p.title + p.abstract)]
    uk = [p for p in patents if any("Technology UK" in a for a in p.applicants)][:4]
    en = uk + [p for p in patents if p.language == "en" and p.abstract and p not in uk][:120]
    return battery[:50] + zh_other[:200] + en, battery[50:62]


def build_home(root: Path, patents: list[Patent], demands: list[Demand]) -> Path:
    """A workspace with the store, both indexes (static-64) and a ranker config override file."""
    home = root / "home"
    ws = Workspace(home)
    with Store(ws.store_path) as store:
        store.write_batch("patents", patents, "test")
        store.write_batch("demands", demands, "test")
    for kind in ("patents", "demands"):
        build_snapshot(ws, kind, dense_model="static-64")  # type: ignore[arg-type]
    (root / "ranker.json").write_text(json.dumps(RANKER), "utf-8")
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """``python -m api.cli serve`` (``pmatch serve``) in a subprocess; stopped by ``stop``."""

    def __init__(self, home: Path, ranker_file: Path, env: dict[str, str] | None = None,
                 key: str | None = None) -> None:
        self.key = key  # readiness is closed too when reads need a key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"server-{self.port}.log"
        cmd = [sys.executable, "-m", "api.cli", "serve", "--home", str(home), "--port", str(self.port),
               "--ranker-config", str(ranker_file), "--no-access-log", "--log-level", "warning"]
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self._wait_ready(180)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                headers = {"X-API-Key": self.key} if self.key else {}
                if httpx.get(f"{self.url}/v1/ready", timeout=2, headers=headers).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


@contextlib.contextmanager
def running_server(tmp: Path, patents: list[Patent], demands: list[Demand],
                   env: dict[str, str] | None = None, backlog: bool = True) -> Iterator[tuple[ApiServer, str]]:
    """Build a workspace under ``tmp``, create an API key, start the server; yields (server, key).

    ``backlog=False`` drops the standing-match work the fixture's own load left pending (on the full sample, 20k
    records the server's worker would match before any write a test makes)."""
    cache = {"PMATCH_VECTOR_CACHE": str(tmp / "vectors.sqlite")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PMATCH_VECTOR_CACHE", cache["PMATCH_VECTOR_CACHE"])
        home = build_home(tmp, patents, demands)
    if not backlog:
        with Store(Workspace(home).store_path) as store, store._db:
            store._db.execute("DELETE FROM pending_work")
    key = keys_create(home, "tests")
    server = ApiServer(home, tmp / "ranker.json", {**cache, **(env or {})}, key)
    try:
        yield server, key
    finally:
        server.stop()
