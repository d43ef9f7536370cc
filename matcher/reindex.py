"""Background index rebuilds for a long-running service: ``Reindexer`` and its ``BuildStatus`` per collection.

bm25s has no incremental update (IDF is global), so a write is followed by a full rebuild of that kind's snapshot,
as ``pmatch index build`` does; the vector cache means only new or changed texts are embedded. ``Reindexer`` runs
one build at a time from a background thread, each in its own process (forked from a forkserver that imported the
heavy modules once) at lower CPU priority, so tokenising and embedding neither hold the server's GIL nor starve
searches, and the build's memory is returned when it ends. Requests that arrive while a build runs are coalesced
into one more build. The child publishes the snapshot with ``matcher.indexing.build_snapshot`` (atomic
``os.replace`` of ``CURRENT``), and the server's ``Searcher`` switches to it on its next call: a search sees the
old snapshot or the new one, never a mix. ``build_snapshot`` takes the workspace's build lock
(``indexes/.build.lock``), so builds of other server processes and of the CLI are serialised too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from indexes.threads import limit_threads

if TYPE_CHECKING:
    from matcher.config import RankerConfig
    from matcher.store import Collection
    from matcher.workspace import Workspace

log = logging.getLogger("pmatch.reindex")


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
                 timeout: float = 6 * 3600, on_publish: Callable[[Collection], None] | None = None) -> None:
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

    def request(self, kinds: Iterable[Collection]) -> dict[Collection, int]:
        """Ask for a rebuild of ``kinds``; returns a ticket (generation) per kind to ``wait`` on."""
        tickets: dict[Collection, int] = {}
        with self._cond:
            for kind in dict.fromkeys(kinds):
                status = self._status[kind]
                status.requested += 1
                if status.state != "building":
                    status.state = "queued"
                tickets[kind] = status.requested
            self._cond.notify_all()
        return tickets

    def wait(self, tickets: dict[Collection, int], timeout: float) -> tuple[bool, str | None]:
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

    def _next(self) -> tuple[Collection, int] | None:
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

    def _build(self, kind: Collection) -> tuple[str, str | None]:
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


_PRELOAD = ["matcher.reindex", "matcher.indexing", "indexes.embedders", "sentence_transformers"]


def _build_context() -> Any:
    """Build processes fork from a forkserver that imported the heavy modules once (a build starts in
    milliseconds, not the ~5 s of importing torch), yet each build is a fresh process that frees its memory."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _build_job(home: str, kind: Collection, config_json: str, threads: int, nice: int, reply: Any) -> None:
    """In a build process: build and publish one snapshot of ``kind``; reply (state, detail)."""
    from matcher.config import RankerConfig
    from matcher.indexing import NothingToIndex, build_snapshot
    from matcher.workspace import Workspace

    try:
        if nice:
            os.nice(nice)
        os.environ["PMATCH_EMBED_THREADS"] = str(threads)
        limit_threads(threads)
        config = RankerConfig.model_validate_json(config_json)
        # build_snapshot takes the workspace's build lock: one build at a time, CLI and servers alike
        path = build_snapshot(Workspace(home), kind, dense_model=config.dense_model,
                              dense_text_chars=config.dense_text_chars)
        reply.send(("published", path.name))
    except NothingToIndex as exc:
        reply.send(("empty", str(exc)))
    except BaseException as exc:
        log.exception("building the %s index failed", kind)
        reply.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        reply.close()
