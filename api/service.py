"""Running the HTTP service: thread limits, background index rebuilds, ``serve`` and ``keys_create``.

Threads. Each request runs in its own worker thread, so every numeric library must use one thread per call:
OpenBLAS, OpenMP (torch, faiss), MKL and the embedder are limited here before a model loads (see
``indexes.threads.limit_threads``). With the defaults, N concurrent searches start N x cores threads on a 2-core
machine and throughput collapses (measured: 15 -> 175 req/s).

Rebuilds. bm25s has no incremental update (IDF is global), so a write is followed by a full rebuild of that
kind's snapshot, as ``pmatch index build`` does; the vector cache means only new or changed texts are embedded.
``Reindexer`` runs one build at a time from a background thread, each in its own process (forked from a
forkserver that imported the heavy modules once) at lower CPU priority, so tokenising and embedding neither hold
the server's GIL nor starve searches, and the build's memory is returned when it ends. Requests that arrive
while a build runs are coalesced into one more build. The child publishes the
snapshot with ``matcher.indexing.build_snapshot`` (atomic ``os.replace`` of ``CURRENT``), and the server's
``Searcher`` switches to it on its next call: a search sees the old snapshot or the new one, never a mix.
A file lock (``indexes/.build.lock``) also serialises builds started by other server processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexes.threads import THREAD_ENV, limit_threads, thread_env

if TYPE_CHECKING:
    from matcher.config import RankerConfig
    from matcher.store import Kind
    from matcher.workspace import Workspace

log = logging.getLogger("pmatch.api")

# --- background rebuilds --------------------------------------------------------------------------------
@dataclass
class BuildStatus:
    state: str = "idle"  # idle | queued | building | published | failed | empty
    requested: int = 0  # generation counter: one per rebuild request
    attempted: int = 0  # highest generation a finished build covered (success or not)
    built: int = 0  # highest generation published
    empty: int = 0  # highest generation that found nothing to index (the store has no records of the kind)
    last_error: str | None = None
    last_build_seconds: float | None = None
    last_snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "requested": self.requested, "built": self.built, "last_error": self.last_error,
                "last_build_seconds": self.last_build_seconds, "last_snapshot": self.last_snapshot}


class Reindexer:
    """One background thread building snapshots one at a time, in child processes; requests are coalesced."""

    def __init__(self, workspace: Workspace, config: RankerConfig, threads: int = 1, nice: int = 10,
                 timeout: float = 6 * 3600, on_publish: Callable[[Kind], None] | None = None) -> None:
        self.workspace = workspace
        self.on_publish = on_publish
        self.config = config
        self.threads = threads
        self.nice = nice
        self.timeout = timeout
        self._cond = threading.Condition()
        self._status: dict[str, BuildStatus] = {"patents": BuildStatus(), "demands": BuildStatus()}
        self._thread: threading.Thread | None = None
        self._child: Any = None  # the running build process
        self._stopping = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pmatch-reindex", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            child = self._child
            self._cond.notify_all()
        if child is not None and child.is_alive():
            child.terminate()
        if self._thread is not None:
            self._thread.join(timeout)

    def request(self, kinds: Iterable[Kind]) -> dict[Kind, int]:
        """Ask for a rebuild of ``kinds``; returns a ticket (generation) per kind to ``wait`` on."""
        tickets: dict[Kind, int] = {}
        with self._cond:
            for kind in dict.fromkeys(kinds):
                status = self._status[kind]
                status.requested += 1
                if status.state != "building":
                    status.state = "queued"
                tickets[kind] = status.requested
            self._cond.notify_all()
        return tickets

    def wait(self, tickets: dict[Kind, int], timeout: float) -> tuple[bool, str | None]:
        """Wait until a build covering each ticket finished. (all published, first error or None)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(self._status[k].attempted >= t for k, t in tickets.items()):
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return False, "timed out waiting for the index rebuild (it goes on in the background)"
                self._cond.wait(left)
            for kind, ticket in tickets.items():
                status = self._status[kind]
                if status.built < ticket and status.empty < ticket:
                    return False, f"{kind}: {status.last_error or 'rebuild failed'}"
        return True, None

    def status(self) -> dict[str, dict[str, Any]]:
        with self._cond:
            return {k: s.to_dict() for k, s in self._status.items()}

    def _next(self) -> tuple[Kind, int] | None:
        with self._cond:
            while not self._stopping:
                for kind, status in self._status.items():
                    if status.requested > status.attempted:
                        status.state = "building"
                        return kind, status.requested  # type: ignore[return-value]
                self._cond.wait()
        return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            kind, generation = job
            started = time.monotonic()
            try:
                state, detail = self._build(kind)
            except Exception as exc:  # never let the worker die: report and go on
                log.exception("index rebuild of %s failed", kind)
                state, detail = "failed", f"{type(exc).__name__}: {exc}"
            with self._cond:
                status = self._status[kind]
                status.attempted = max(status.attempted, generation)
                status.last_build_seconds = round(time.monotonic() - started, 2)
                if state == "published":
                    status.built = max(status.built, generation)
                    status.last_snapshot, status.last_error = detail, None
                elif state == "empty":
                    status.empty = max(status.empty, generation)
                else:
                    status.last_error = detail
                status.state = "queued" if status.requested > status.attempted else state
                if state != "published" or self.on_publish is None:
                    self._cond.notify_all()
            log.info("index rebuild of %s: %s (%s) in %.1f s", kind, state, detail, status.last_build_seconds)
            if state == "published" and self.on_publish is not None:
                try:  # e.g. open the new snapshot now, before a search needs it; then tell the waiters
                    self.on_publish(kind)
                except Exception:
                    log.exception("after publishing %s", kind)
                with self._cond:
                    self._cond.notify_all()

    def _build(self, kind: Kind) -> tuple[str, str | None]:
        ctx = _build_context()
        receive, send = ctx.Pipe(duplex=False)
        with self._cond:
            if self._stopping:
                return "failed", "server stopping"
            # Not daemonic: a daemonic process may not start children, and the BM25 build tokenizes with a
            # process pool once a kind has PARALLEL_MIN_DOCS texts. ``stop`` terminates the child instead.
            child = ctx.Process(target=_build_job, name=f"pmatch-build-{kind}", daemon=False,
                                args=(str(self.workspace.home), kind, self.config.model_dump_json(), self.threads,
                                      self.nice, send))
            child.start()
            self._child = child
        send.close()
        try:
            if not receive.poll(self.timeout):
                child.kill()
                return "failed", f"build took longer than {self.timeout:.0f} s"
            state, detail = receive.recv()
            return str(state), detail
        except EOFError:  # the child died without a word (killed, out of memory, or the server is stopping)
            child.join(5)
            return "failed", f"build process exited with code {child.exitcode}"
        finally:
            receive.close()
            child.join(30)
            with self._cond:
                self._child = None


_PRELOAD = ["api.service", "matcher.indexing", "indexes.embedders", "sentence_transformers"]


def _build_context() -> Any:
    """Build processes fork from a forkserver that imported the heavy modules once (a build starts in
    milliseconds, not the ~5 s of importing torch), yet each build is a fresh process that frees its memory."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _build_job(home: str, kind: Kind, config_json: str, threads: int, nice: int, reply: Any) -> None:
    """In a build process: build and publish one snapshot of ``kind``; reply (state, detail)."""
    import fcntl

    from matcher.config import RankerConfig
    from matcher.indexing import NothingToIndex, build_snapshot
    from matcher.workspace import Workspace

    try:
        if nice:
            os.nice(nice)
        os.environ["PMATCH_EMBED_THREADS"] = str(threads)
        limit_threads(threads)
        config = RankerConfig.model_validate_json(config_json)
        ws = Workspace(home)
        lock_path = ws.home / "indexes" / ".build.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time per workspace, across server processes
            path = build_snapshot(ws, kind, dense_model=config.dense_model, dense_text_chars=config.dense_text_chars)
        reply.send(("published", path.name))
    except NothingToIndex as exc:
        reply.send(("empty", str(exc)))
    except BaseException as exc:
        log.exception("building the %s index failed", kind)
        reply.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        reply.close()


# --- entry points ---------------------------------------------------------------------------------------
def keys_create(home: str | Path | None, name: str) -> str:
    """Create an API key called ``name`` in the workspace at ``home``; returns the plain key (shown once)."""
    from api.keys import KeyStore
    from matcher.workspace import Workspace

    with KeyStore(Workspace(home).store_path) as keys:
        return keys.create(name)


def keys_revoke(home: str | Path | None, name: str) -> bool:
    from api.keys import KeyStore
    from matcher.workspace import Workspace

    with KeyStore(Workspace(home).store_path) as keys:
        return keys.revoke(name)


def keys_list(home: str | Path | None) -> list[dict[str, Any]]:
    from api.keys import KeyStore
    from matcher.workspace import Workspace

    with KeyStore(Workspace(home).store_path) as keys:
        return [vars(k) for k in keys.list()]


SETTINGS_ENV = "PMATCH_API_SETTINGS"  # ServiceSettings as JSON, for a re-executed server or its worker processes
_NUMERIC = ("numpy", "torch", "faiss")


def _settings_from_env() -> Any:
    from api.app import ServiceSettings

    raw = os.environ.get(SETTINGS_ENV)
    return ServiceSettings.model_validate_json(raw) if raw else ServiceSettings.from_env()


def app_factory() -> Any:
    """The application for a uvicorn worker process: home from ``$PMATCH_HOME``, settings from the environment."""
    from api.app import create_app
    from matcher.workspace import Workspace

    limit_threads(1)
    return create_app(Workspace(), _settings_from_env())


def serve(host: str = "127.0.0.1", port: int = 8000, home: str | Path | None = None,
          settings: Any = None, config: RankerConfig | None = None, log_level: str = "info",
          access_log: bool = True, workers: int = 1) -> None:
    """Run the service with uvicorn until interrupted. One process by default (requests run in its thread pool);
    ``workers`` > 1 starts that many processes, each with its own model and searcher (more throughput when the
    GIL is the limit, more memory), sharing the port, the store and the index files.

    OpenMP reads its thread settings once, when the library loads: if numpy, torch or faiss is already imported
    here (as by the ``pmatch`` CLI), this process re-executes itself as ``python -m api.service serve`` with the
    thread limits in its environment (same pid, same arguments)."""
    if config is not None and settings is None:
        settings = _settings_from_env()
    if config is not None:
        settings = settings.model_copy(update={"ranker": config})
    unset = [key for key in THREAD_ENV if key not in os.environ]
    if unset and any(name in sys.modules for name in _NUMERIC) and not os.environ.get("PMATCH_API_REEXEC"):
        env = {**thread_env(1), **os.environ, "PMATCH_API_REEXEC": "1"}
        if settings is not None:
            env[SETTINGS_ENV] = settings.model_dump_json()
        argv = [sys.executable, "-m", "api.service", "serve", "--host", host, "--port", str(port),
                "--log-level", log_level, "--workers", str(workers)]
        argv += ["--home", str(Path(home).resolve())] if home is not None else []
        argv += [] if access_log else ["--no-access-log"]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    applied = limit_threads(1)
    import uvicorn

    from api.app import create_app
    from matcher.workspace import Workspace

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("thread limits: %s", applied["env"])
    settings = settings or _settings_from_env()
    print(f"patent-match API on http://{host}:{port} (workspace {Workspace(home).home.resolve()})\n"
          f"  interactive docs: http://{host}:{port}/docs   ·   stop with Ctrl-C", flush=True)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": access_log,
                               "timeout_keep_alive": 30, "timeout_graceful_shutdown": 10}
    if workers > 1:
        os.environ["PMATCH_HOME"] = str(Workspace(home).home.resolve())
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("api.service:app_factory", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(Workspace(home), settings), **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.service", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the HTTP service")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--home", default=None)
    p_serve.add_argument("--ranker-config", default=None, help="JSON file with RankerConfig overrides")
    p_serve.add_argument("--log-level", default="info")
    p_serve.add_argument("--no-access-log", action="store_true")
    p_serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    p_keys = sub.add_parser("keys-create", help="create an API key and print it")
    p_keys.add_argument("name")
    p_keys.add_argument("--home", default=None)
    args = parser.parse_args(argv)
    if args.command == "keys-create":
        print(keys_create(args.home, args.name))
        return 0
    config = None
    if args.ranker_config:
        from matcher.config import RankerConfig

        config = RankerConfig.model_validate_json(Path(args.ranker_config).read_text("utf-8"))
    serve(args.host, args.port, args.home, config=config, log_level=args.log_level,
          access_log=not args.no_access_log, workers=args.workers)
    return 0


if __name__ == "__main__":
    for _key, _value in THREAD_ENV.items():  # before numpy/torch load: they read these once, at import
        os.environ.setdefault(_key, _value)
    sys.exit(main())
