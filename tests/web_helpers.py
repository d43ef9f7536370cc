"""A running service with the web page, for the page's tests: a small workspace from the bundled real data (the
tiny static-64 model) plus one hostile record, served by a real uvicorn on a free 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api import ApiServer, build_home, free_port

from api.service import keys_create
from indexes.threads import thread_env
from matcher.records import Demand, Patent

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_TITLE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
HOSTILE_APPLICANT = '" onmouseover="window.__pwned = 3" x="'
HOSTILE = Patent(id="CN000000001A", title=HOSTILE_TITLE, applicants=[HOSTILE_APPLICANT], language="zh",
                 abstract="一种锂离子电池正极材料的制备方法，" + HOSTILE_TITLE, legal_status="valid",
                 applicant_type="company", ipc=["H01M4/58"])
HOSTILE_DEMAND = Demand(id="ZB-D-XSS", title=HOSTILE_TITLE + "锂电池正极材料需求", enterprise=HOSTILE_APPLICANT,
                        description="寻求锂离子电池正极材料技术。")
LAUNCH = """
import sys, json, uvicorn
from api.app import ServiceSettings, create_app
from api.web import mount
from matcher.config import RankerConfig
from matcher.workspace import Workspace
home, port, ranker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = RankerConfig.model_validate_json(open(ranker).read())
settings = ServiceSettings.from_env().model_copy(update={"ranker": config})
app = create_app(Workspace(home), settings)
mount(app)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


class PageServer(ApiServer):
    """The service with the page mounted (``api.web.mount``), in a subprocess with the server's thread limits."""

    def __init__(self, home: Path, ranker_file: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"server-{self.port}.log"
        self._log_file = self.log.open("w")
        cmd = [sys.executable, "-c", LAUNCH, str(home), str(self.port), str(ranker_file)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env={**os.environ, **thread_env(1), **(env or {})})
        self._wait_ready(180)


@contextlib.contextmanager
def page_server(tmp: Path, patents: list[Patent], demands: list[Demand],
                env: dict[str, str] | None = None) -> Iterator[tuple[PageServer, str]]:
    """Build the workspace (with the hostile records), create an API key, start the server: (server, key)."""
    cache = {"PMATCH_VECTOR_CACHE": str(tmp / "vectors.sqlite")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PMATCH_VECTOR_CACHE", cache["PMATCH_VECTOR_CACHE"])
        home = build_home(tmp, [*patents, HOSTILE], [*demands, HOSTILE_DEMAND])
    key = keys_create(home, "tests")
    server = PageServer(home, tmp / "ranker.json", {**cache, **(env or {})})
    try:
        yield server, key
    finally:
        server.stop()
