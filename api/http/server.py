"""Running the HTTP service with uvicorn (``pmatch serve``): thread limits, one or several worker processes.

Threads. Each request runs in its own worker thread, so every numeric library must use one thread per call:
OpenBLAS, OpenMP (torch, faiss), MKL and the embedder are limited here before a model loads (see
``indexes.threads.limit_threads``). With the defaults, N concurrent searches start N x cores threads on a 2-core
machine and throughput collapses (measured: 15 -> 175 req/s).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from api.http.settings import ServiceSettings
from indexes.threads import THREAD_ENV, limit_threads, thread_env

log = logging.getLogger("pmatch.api")

SETTINGS_ENV = "PMATCH_API_SETTINGS"  # ServiceSettings as JSON, for a re-executed server or its worker processes
_NUMERIC = ("numpy", "torch", "faiss")


def settings_from_env() -> ServiceSettings:
    """The settings a parent process handed over in ``$PMATCH_API_SETTINGS``, else from ``PMATCH_API_*``."""
    raw = os.environ.get(SETTINGS_ENV)
    return ServiceSettings.model_validate_json(raw) if raw else ServiceSettings()


def app_factory() -> Any:
    """The application for a uvicorn worker process: home from ``$PMATCH_HOME``, settings from the environment."""
    from api.http.app import create_app
    from api.http.protocol import HeaderTimeoutProtocol
    from matcher.workspace import Workspace

    limit_threads(1)
    settings = settings_from_env()
    HeaderTimeoutProtocol.header_timeout_s = settings.header_read_timeout_s
    return create_app(Workspace(), settings)


def serve(host: str = "127.0.0.1", port: int = 8000, home: str | Path | None = None,
          settings: ServiceSettings | None = None, log_level: str = "info", access_log: bool = True,
          workers: int = 1) -> None:
    """Run the service with uvicorn until interrupted. One process by default (requests run in its thread pool);
    ``workers`` > 1 starts that many processes, each with its own model and searcher (more throughput when the
    GIL is the limit, more memory), sharing the port, the store and the index files.

    OpenMP reads its thread settings once, when the library loads: if numpy, torch or faiss is already imported
    here (as by the ``pmatch`` CLI), this process re-executes itself as ``python -m api.cli serve`` with the
    thread limits in its environment and the settings in ``$PMATCH_API_SETTINGS`` (same pid, same arguments)."""
    settings = settings or settings_from_env()
    unset = [key for key in THREAD_ENV if key not in os.environ]
    if unset and any(name in sys.modules for name in _NUMERIC) and not os.environ.get("PMATCH_API_REEXEC"):
        env = {**thread_env(1), **os.environ, "PMATCH_API_REEXEC": "1", SETTINGS_ENV: settings.model_dump_json()}
        argv = [sys.executable, "-m", "api.cli", "serve", "--host", host, "--port", str(port),
                "--log-level", log_level, "--workers", str(workers)]
        argv += ["--home", str(Path(home).resolve())] if home is not None else []
        argv += [] if access_log else ["--no-access-log"]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    applied = limit_threads(1)
    import uvicorn

    from api.http.app import create_app
    from api.http.protocol import IMPORT_PATH, HeaderTimeoutProtocol
    from matcher.workspace import Workspace

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("thread limits: %s", applied["env"])
    print(f"patent-match page: http://{host}:{port}/   (workspace {Workspace(home).home.resolve()})\n"
          f"  API docs: http://{host}:{port}/docs   ·   stop with Ctrl-C", flush=True)
    HeaderTimeoutProtocol.header_timeout_s = settings.header_read_timeout_s
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": access_log,
                               "timeout_keep_alive": 30, "timeout_graceful_shutdown": 10, "http": IMPORT_PATH}
    if workers > 1:
        os.environ["PMATCH_HOME"] = str(Workspace(home).home.resolve())
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("api.http.server:app_factory", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(Workspace(home), settings), **options)
