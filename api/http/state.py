"""What the endpoints share: ``Service`` (one searcher, the API keys, the background reindexer) and its dependency.

The searcher, its snapshots and the embedder are loaded once at startup and shared by all requests.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from typing import Annotated

import numpy as np
from fastapi import Depends, Request

from api.http import schemas as s
from api.http.errors import ApiError
from api.http.keys import KeyStore
from api.http.middleware import InFlight
from api.http.settings import ServiceSettings
from matcher.config import Mode, load_config
from matcher.facets import facet_counts
from matcher.i18n import Message
from matcher.reindex import Reindexer
from matcher.search import NotIndexed, Searcher
from matcher.served import Snapshot
from matcher.snapshot import SnapshotManifest, pending_writes
from matcher.standing import StandingSettings, StandingWorker, notify_published
from matcher.store import COLLECTIONS, Collection
from matcher.workspace import Workspace

log = logging.getLogger("pmatch.api")


def index_ref(manifest: SnapshotManifest, pending: bool | None = None) -> s.IndexRef:
    return s.IndexRef(name=manifest.name, data_version=manifest.data_version, doc_count=manifest.doc_count,
                      pending_writes=pending)


class Service:
    """What the endpoints share: one searcher (snapshots, store connection, embedder), the keys, the reindexer."""

    def __init__(self, workspace: Workspace, settings: ServiceSettings) -> None:
        self.workspace = workspace
        self.settings = settings
        self.config = settings.ranker or load_config(workspace.home)
        self.searcher = Searcher(workspace, self.config, mmap=not settings.index_in_memory)
        self.keys = KeyStore(workspace.store_path)
        self.in_flight = InFlight()  # the searches and matches being answered: the standing worker yields to them
        standing = StandingSettings()
        self.standing = (StandingWorker(self.searcher, standing, busy=self.in_flight.busy) if standing.background
                         else None)
        self.reindexer = Reindexer(workspace, self.config, threads=settings.build_threads, nice=settings.build_nice,
                                   on_publish=self._published)
        self.write_lock = threading.Lock()  # one writer at a time in this process (SQLite allows one anyway)
        self.ready = False
        self.ready_message: str | None = "starting"
        self._facets: dict[tuple[str, str], dict[str, list[s.FacetValue]]] = {}
        self._facet_lock = threading.Lock()
        # kind -> (CURRENT's identity, what it names): /v1/ready answers on the event loop without reading manifests
        self._served: dict[Collection, tuple[tuple[int, int] | None, s.IndexRef | None]] = {}
        self._pending: dict[Collection, tuple[tuple[str, int], bool]] = {}  # (snapshot, data version) -> pending

    @property
    def candidates(self) -> int:
        """How many results each retriever fetches, and so the longest ranked list (HTTP ``window``)."""
        return self.config.candidates

    def start(self) -> None:
        self.reindexer.start()
        if self.standing is not None:
            self.standing.start()  # resumes whatever the store has pending
        if self.settings.warm:
            threading.Thread(target=self.warm, name="pmatch-warm", daemon=True).start()
        else:
            self.ready, self.ready_message = True, None

    def stop(self) -> None:
        self.reindexer.stop()
        if self.standing is not None:
            self.standing.stop()
        self.keys.close()
        self.searcher.close()

    def warm(self) -> None:
        """Open the served snapshots and load and exercise the embedder, so the first request is not slow."""
        missing = []
        try:
            for kind in COLLECTIONS:
                try:
                    snap = self.snapshot(kind)
                except NotIndexed:
                    if self.searcher.store.count(kind):
                        missing.append(kind)
                    continue
                mode: Mode = "hybrid" if snap.dense is not None else "bm25"
                mask = np.ones(len(snap.bm25), dtype=bool)
                self.searcher.search(snap, "锂电池 正极 battery cathode", 10, mask, mode)
        except Exception as exc:
            log.exception("warming the searcher failed")
            message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
            self.ready, self.ready_message = False, f"warm-up failed: {message}"
            return
        if missing:
            self.ready, self.ready_message = False, f"no index for {', '.join(missing)}: rebuild it"
        else:
            self.ready, self.ready_message = True, None

    def snapshot(self, kind: Collection) -> Snapshot:
        """The served snapshot; one that cannot be opened (e.g. built by an older analyzer) is a 503, not a 500."""
        try:
            return self.searcher.snapshot(kind)
        except NotIndexed:
            raise
        except Exception as exc:
            log.warning("opening the %s index failed: %s", kind, exc)
            raise ApiError(503, "index_unusable", Message("http.index_unusable", kind=kind, detail=str(exc))) from None

    def pinned(self, kinds: tuple[Collection, ...]) -> Searcher:
        """A searcher answering from the snapshots served now: every search of one request sees one index."""
        for kind in kinds:
            self.snapshot(kind)  # an unusable index is a 503 here, not a 500 inside the search
        return self.searcher.pinned(kinds)

    def served(self, kind: Collection) -> s.IndexRef | None:
        """The served snapshot of ``kind``, read from its manifest once per publish: ``/v1/ready`` and
        ``/v1/index/status`` stay fast while searches saturate the disk and the threads. The cache is dropped when
        this service publishes (``_published``) and when ``CURRENT`` is replaced by another process (a new inode
        or mtime: one ``stat``, no file read)."""
        pointer = self.workspace.index_root(kind) / "CURRENT"
        try:
            stat = pointer.stat()
            identity: tuple[int, int] | None = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            identity = None
        cached = self._served.get(kind)
        if cached is not None and cached[0] == identity:
            return cached[1]
        manifest = self.workspace.current_manifest(kind)
        ref = None if manifest is None else index_ref(manifest)
        self._served[kind] = (identity, ref)
        return ref

    def _published(self, kind: Collection) -> None:
        """A background build published a snapshot of ``kind``: forget the cached one, open the new one, and wake
        the standing-match worker for the writes it made searchable."""
        self._served.pop(kind, None)
        if self.ready:  # open only the new snapshot: a warm-up search of both kinds held writers ~1 s at 1M
            try:
                self.snapshot(kind)
            except Exception:  # the full warm-up reports it and marks the service not ready
                self.warm()
        else:  # e.g. the first index of a kind: warm up fully, which also decides readiness
            self.warm()
        notify_published(self.standing, kind)

    def check_key(self, key: str | None) -> str:
        if not key:
            raise ApiError(401, "unauthorized", Message("http.key_required"), headers={"WWW-Authenticate": "Bearer"})
        name = self.keys.verify(key)
        if name is None:
            raise ApiError(401, "unauthorized", Message("http.key_invalid"), headers={"WWW-Authenticate": "Bearer"})
        return name

    def facets(self, kind: Collection, limit: int) -> tuple[s.IndexRef, dict[str, list[s.FacetValue]]]:
        """Facet counts of the served snapshot (computed once per snapshot), each list cut to ``limit``."""
        snap = self.snapshot(kind)
        key = (kind, snap.path.name)
        with self._facet_lock:
            counts = self._facets.get(key)
        if counts is None:
            counts = {field: [s.FacetValue(value=v, count=n) for v, n in pairs]
                      for field, pairs in facet_counts(snap.facets, kind).items()}
            with self._facet_lock:
                self._facets = {k: v for k, v in self._facets.items() if k[0] != kind}
                self._facets[key] = counts
        return index_ref(snap.manifest), {field: values[:limit] for field, values in counts.items()}

    def answered_by(self, manifest: SnapshotManifest) -> s.IndexRef:
        """The snapshot that answered a search or match, with whether writes are pending: computed once per
        (snapshot, store data version), so a request costs one read of the data version, not a scan."""
        kind = manifest.kind
        key = (manifest.name, self.searcher.store.data_version)
        cached = self._pending.get(kind)
        if cached is None or cached[0] != key:
            cached = (key, pending_writes(self.searcher.store, manifest))
            self._pending[kind] = cached
        return index_ref(manifest, cached[1])

    def segments(self, kind: Collection) -> s.IndexSegments | None:
        """The served snapshot's segments and how fresh it is."""
        manifest = self.workspace.current_manifest(kind)
        if manifest is None:
            return None
        age = None
        if manifest.last_write_at:
            age = round(time.time() - calendar.timegm(time.strptime(manifest.last_write_at, "%Y-%m-%dT%H:%M:%SZ")), 1)
        summary = manifest.summary()
        return s.IndexSegments(segments=summary["segments"], segment_sizes=summary["segment_sizes"],
                               deleted=summary["deleted"], doc_count=manifest.doc_count,
                               pending_writes=pending_writes(self.searcher.store, manifest),
                               last_write_at=manifest.last_write_at, last_write_age_seconds=age,
                               full_built_at=manifest.full_built_at)

    def reindex(self, kinds: list[Collection], run: bool, wait: bool, changed: bool = True,
                full: bool = False) -> s.ReindexInfo:
        """Request a background flush (``full``: rebuild) of ``kinds`` after a write (``run``); wait if ``wait``."""
        if not changed:
            return s.ReindexInfo(state="idle", kinds=kinds, message="nothing changed: no rebuild needed")
        if not run:
            return s.ReindexInfo(state="disabled", kinds=kinds,
                                 message="not rebuilt: POST /v1/index/rebuild when ready")
        tickets = self.reindexer.request(kinds, full=full)
        if not wait:
            return s.ReindexInfo(state="queued", kinds=kinds, message="a background flush will make the change "
                                 "searchable (GET /v1/index/status shows when)")
        ok, error = self.reindexer.wait(tickets, self.settings.reindex_wait_seconds, full=full)
        status = self.reindexer.status()
        when = [status[k]["last_searchable_at"] for k in kinds if status[k]["last_searchable_at"]]
        seconds = {k: (status[k]["last_flush"] or {}).get("seconds") for k in kinds}
        return s.ReindexInfo(state="published" if ok else "failed", kinds=kinds, message=error,
                             searchable_at=max(when) if ok and when else None, seconds=seconds if ok else None)


async def get_service(request: Request) -> Service:
    """The service (``async``: FastAPI runs a sync dependency in the worker threads, so ``/v1/ready`` and
    ``/v1/health`` would wait behind the searches for a thread just to look it up)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
