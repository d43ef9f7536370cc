"""Background indexing for a long-running service: ``Reindexer`` and its ``BuildStatus`` per kind.

A write is followed by a flush (``matcher.flush.update_snapshot``): one small segment of the new and changed
records (only those are embedded), deletions masked, published as a new snapshot; a full rebuild runs only when
asked (``POST /v1/index/rebuild``, ``pmatch index build --full``) or when there is no compatible snapshot to update.
``Reindexer`` runs one flush at a time from a background thread, each in its own process (forked from a forkserver
that imported the heavy modules once) at lower CPU priority, so tokenising and embedding neither hold the server's
GIL nor starve searches. Requests that arrive while a flush runs are coalesced into one more flush. The child
publishes atomically (``os.replace`` of ``CURRENT``); ``on_publish`` then opens the new snapshot in the server
(only the new segment is read: opened segments are kept), the ``matcher.searchable`` hooks are told which records
became searchable, and only then are ``wait`` callers released. When the tiered merge policy asks for it, a second
thread merges segments in its own child process; merges take the build lock only to publish, so they never hold up
a flush or a search. Every publish takes the workspace's build lock (``indexes/.build.lock``), so builds of other
server processes and of the CLI are serialised too; a full rebuild (one at a time, ``.full.lock``) takes it only
to publish, so neither a CLI ``pmatch index build --full`` nor a server's own (``POST /v1/index/rebuild`` with
``full``, run by a third thread with its own tickets) holds up this server's flushes.
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
from matcher.searchable import Searchable, notify_searchable

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
    full_requested: int = 0  # full rebuilds asked for (their own generation counter: they run on their own thread)
    full_attempted: int = 0
    full_built: int = 0
    full_error: str | None = None
    rebuilding: bool = False  # a full rebuild is running (flushes go on beside it)
    last_flush: dict[str, Any] | None = None  # added, deleted, full, seconds (diff, embed, segment_write, publish)
    last_searchable_at: float | None = None  # epoch seconds: when searches began to see the last published write
    merging: bool = False
    last_merge_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        searchable = None if self.last_searchable_at is None else \
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_searchable_at))
        # flushes and full rebuilds count apart (they run on two threads); the status shows their sums
        return {"state": self.state, "requested": self.requested + self.full_requested,
                "built": self.built + self.full_built, "last_error": self.last_error,
                "last_build_seconds": self.last_build_seconds, "last_snapshot": self.last_snapshot,
                "pending": self.requested > self.attempted or self.full_requested > self.full_attempted,
                "last_flush": self.last_flush, "last_searchable_at": searchable, "merging": self.merging,
                "last_merge_seconds": self.last_merge_seconds, "rebuilding": self.rebuilding}


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
        self._merge_child: Any = None
        self._full_child: Any = None
        self._full_thread: threading.Thread | None = None
        self._merge_wanted: set[str] = set()
        self._merge_thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        threading.Thread(target=_warm_forkserver, name="pmatch-warm", daemon=True).start()
        self._thread = threading.Thread(target=self._run, name="pmatch-reindex", daemon=True)
        self._thread.start()
        self._merge_thread = threading.Thread(target=self._run_merges, name="pmatch-merge", daemon=True)
        self._merge_thread.start()
        self._full_thread = threading.Thread(target=self._run_full, name="pmatch-full", daemon=True)
        self._full_thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            children = [self._child, self._merge_child, self._full_child]
            self._cond.notify_all()
        for child in children:
            if child is not None and child.is_alive():
                child.terminate()
        for thread in (self._thread, self._merge_thread, self._full_thread):
            if thread is not None:
                thread.join(timeout)

    def request(self, kinds: Iterable[Collection], full: bool = False) -> dict[Collection, int]:
        """Ask for a flush of ``kinds`` (``full``: a full rebuild, on its own thread, so this server's flushes go on
        beside it); returns a ticket (generation) per kind to ``wait`` on with the same ``full``."""
        tickets: dict[Collection, int] = {}
        with self._cond:
            for kind in dict.fromkeys(kinds):
                status = self._status[kind]
                if full:
                    status.full_requested += 1
                    tickets[kind] = status.full_requested
                    continue
                status.requested += 1
                if status.state != "building":
                    status.state = "queued"
                tickets[kind] = status.requested
            self._cond.notify_all()
        return tickets

    def wait(self, tickets: dict[Collection, int], timeout: float, full: bool = False) -> tuple[bool, str | None]:
        """Wait until a build covering each ticket finished. (all published, first error or None)."""
        deadline = time.monotonic() + timeout

        def done(status: BuildStatus, ticket: int) -> bool:
            return (status.full_attempted if full else status.attempted) >= ticket

        with self._cond:
            while not all(done(self._status[k], t) for k, t in tickets.items()):
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return False, "timed out waiting for the index rebuild (it goes on in the background)"
                self._cond.wait(left)
            for kind, ticket in tickets.items():
                status = self._status[kind]
                if full and status.full_built < ticket:
                    return False, f"{kind}: {status.full_error or 'rebuild failed'}"
                if not full and status.built < ticket and status.empty < ticket:
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

    def _build_and_open(self, kind: Collection, job: str) -> tuple[str, Any, dict[str, Any]]:
        """Run one flush or full rebuild of ``kind`` and, once published, make it searchable in this server before
        any waiter is released: (state, detail: snapshot name or error, what the build reported)."""
        flush: dict[str, Any] = {}
        try:
            state, detail = self._build(kind, job)
            if isinstance(detail, dict):
                flush, detail = detail, detail.get("snapshot")
        except Exception as exc:  # never let a worker die: report and go on
            log.exception("index %s of %s failed", job, kind)
            state, detail = "failed", f"{type(exc).__name__}: {exc}"
        if state == "published":
            self._after_publish(kind, flush)
        return state, detail, flush

    def _run(self) -> None:
        while (job := self._next()) is not None:
            kind, generation = job
            started = time.monotonic()
            state, detail, flush = self._build_and_open(kind, "flush")
            with self._cond:
                status = self._status[kind]
                status.attempted = max(status.attempted, generation)
                status.last_build_seconds = round(time.monotonic() - started, 2)
                if state == "published":
                    status.built = max(status.built, generation)
                    status.last_snapshot, status.last_error = detail, None
                    status.last_flush = {k: v for k, v in flush.items() if k not in ("added_ids", "deleted_ids")}
                elif state == "empty":
                    status.empty = max(status.empty, generation)
                else:
                    status.last_error = detail
                status.state = "queued" if status.requested > status.attempted else state
                self._cond.notify_all()
            log.info("index flush of %s: %s (%s) in %.1f s", kind, state, detail, status.last_build_seconds)

    def _after_publish(self, kind: Collection, flush: dict[str, Any]) -> None:
        """Open the new snapshot (``on_publish``), tell the searchable hooks, release the waiters, maybe merge."""
        if self.on_publish is not None:
            try:  # e.g. open the new snapshot now, before a search needs it; then tell the waiters
                self.on_publish(kind)
            except Exception:
                log.exception("after publishing %s", kind)
        at = time.time()
        if flush.get("snapshot") and (flush.get("added_ids") or flush.get("deleted_ids") or flush.get("full")):
            notify_searchable(Searchable(kind, self.workspace.index_root(kind) / flush["snapshot"],
                                         tuple(flush.get("added_ids") or ()), tuple(flush.get("deleted_ids") or ()),
                                         bool(flush.get("full")), at))
        with self._cond:
            self._status[kind].last_searchable_at = at
            if flush.get("merge_wanted"):
                self._merge_wanted.add(kind)
            self._cond.notify_all()

    def _run_full(self) -> None:
        """Full rebuilds, one at a time, beside the flushes (a full build takes the build lock only to publish)."""
        while True:
            with self._cond:
                while not self._stopping and not any(st.full_requested > st.full_attempted
                                                     for st in self._status.values()):
                    self._cond.wait()
                if self._stopping:
                    return
                kind: Collection = next(k for k, st in self._status.items()  # type: ignore[assignment]
                                        if st.full_requested > st.full_attempted)
                status = self._status[kind]
                generation, status.rebuilding = status.full_requested, True
            started = time.monotonic()
            state, detail, _ = self._build_and_open(kind, "full")
            with self._cond:
                status.rebuilding = False
                status.full_attempted = max(status.full_attempted, generation)
                status.last_build_seconds = round(time.monotonic() - started, 2)
                if state in ("published", "empty"):
                    status.full_built = max(status.full_built, generation)
                    status.full_error = None
                    if state == "published":
                        status.last_snapshot = detail
                else:
                    status.full_error = detail
                    status.last_error = detail
                self._cond.notify_all()
            log.info("full rebuild of %s: %s (%s) in %.1f s", kind, state, detail, time.monotonic() - started)

    def _run_merges(self) -> None:
        while True:
            with self._cond:
                while not self._merge_wanted and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                kind: Collection = sorted(self._merge_wanted)[0]  # type: ignore[assignment]
                self._merge_wanted.discard(kind)
                self._status[kind].merging = True
            started = time.monotonic()
            try:
                state, detail = self._build(kind, "merge")
            except Exception:
                log.exception("merging %s segments failed", kind)
                state, detail = "failed", None
            with self._cond:
                self._status[kind].merging = False
                self._status[kind].last_merge_seconds = round(time.monotonic() - started, 2)
            log.info("merge of %s segments: %s in %.1f s", kind, state, time.monotonic() - started)
            if state == "published" and self.on_publish is not None:
                try:
                    self.on_publish(kind)
                except Exception:
                    log.exception("after merging %s", kind)
            if isinstance(detail, dict) and detail.get("merge_wanted"):
                with self._cond:
                    self._merge_wanted.add(kind)

    def _build(self, kind: Collection, job: str = "flush") -> tuple[str, Any]:
        ctx = _build_context()
        receive, send = ctx.Pipe(duplex=False)
        with self._cond:
            if self._stopping:
                return "failed", "server stopping"
            # Not daemonic: a daemonic process may not start children, and the BM25 build tokenizes with a
            # process pool once a kind has PARALLEL_MIN_DOCS texts. ``stop`` terminates the child instead.
            child = ctx.Process(target=_build_job, name=f"pmatch-{job}-{kind}", daemon=False,
                                args=(str(self.workspace.home), kind, self.config.model_dump_json(), self.threads,
                                      self.nice, send, job))
            child.start()
            if job == "merge":
                self._merge_child = child
            elif job == "full":
                self._full_child = child
            else:
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
                if job == "merge":
                    self._merge_child = None
                elif job == "full":
                    self._full_child = None
                else:
                    self._child = None


_PRELOAD = ["matcher.reindex", "matcher.indexing", "matcher.flush", "matcher.full_build", "matcher.merge",
            "indexes.embedders", "sentence_transformers"]


def _build_context() -> Any:
    """Build processes fork from a forkserver that imported the heavy modules once (a build starts in
    milliseconds, not the ~5 s of importing torch), yet each build is a fresh process that frees its memory."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _ready() -> None:
    """A child that does nothing: starting one makes the forkserver import the heavy modules now."""


def _warm_forkserver() -> None:
    """Start the forkserver when the service starts, not at the first write: its imports (torch, the embedder)
    take seconds, which the first write made searchable would otherwise wait for."""
    try:
        child = _build_context().Process(target=_ready, name="pmatch-warm", daemon=True)
        child.start()
        child.join(300)
    except Exception:  # a failure here shows again, and is reported, at the first build
        log.exception("starting the build forkserver failed")


def _build_job(home: str, kind: Collection, config_json: str, threads: int, nice: int, reply: Any,
               job: str = "flush") -> None:
    """In a build process: flush (or fully rebuild, or merge) one kind and publish; reply (state, detail)."""
    from matcher.config import RankerConfig
    from matcher.flush import update_snapshot
    from matcher.full_build import build_snapshot
    from matcher.indexing import NothingToIndex
    from matcher.merge import merge_plan, merge_segments
    from matcher.workspace import Workspace

    try:
        if nice:
            os.nice(nice)
        os.environ["PMATCH_EMBED_THREADS"] = str(threads)
        limit_threads(threads)
        config = RankerConfig.model_validate_json(config_json)
        ws = Workspace(home)
        # every build takes the workspace's build lock: one at a time, CLI and servers alike
        if job == "merge":
            path = merge_segments(ws, kind, config.dense_model, config.dense_text_chars)
            detail: dict[str, Any] = {"snapshot": path.name if path else None}
        elif job == "full":
            path = build_snapshot(ws, kind, dense_model=config.dense_model, dense_text_chars=config.dense_text_chars,
                                  title_model=config.title_model)
            detail = {"snapshot": path.name, "full": True}
        else:
            result = update_snapshot(ws, kind, dense_model=config.dense_model,
                                     dense_text_chars=config.dense_text_chars, title_model=config.title_model)
            if result.state == "empty":
                raise NothingToIndex("index.nothing", kind=kind, store=str(ws.store_path))
            detail = {**result.to_dict(), "added_ids": result.added, "deleted_ids": result.deleted}
        manifest = ws.current_manifest(kind)
        detail["merge_wanted"] = bool(manifest and merge_plan(manifest.segments))
        if job == "merge" and detail["snapshot"] is None:
            reply.send(("idle", detail))
        else:
            reply.send(("published", detail))
    except NothingToIndex as exc:
        reply.send(("empty", str(exc)))
    except BaseException as exc:
        log.exception("building the %s index failed", kind)
        reply.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        reply.close()
