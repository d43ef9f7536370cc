"""Flushing: making every write to a collection since the current snapshot searchable, in one small new segment.

``update_snapshot`` asks the store what changed since the current snapshot (records of batches after its stamp;
deletions from the store's deletion log, or by comparing every id when the counts still disagree), writes one
segment of the new and changed records (embedding only those), masks the positions they supersede or that were
deleted, and publishes. Only the ids in question are looked up, by binary search in each segment's id lookup
(``indexes.bm25_segment.find_positions``), so a small flush of a million records costs milliseconds before it
embeds. Collection statistics are global at query time (``indexes.bm25``), so the result searches exactly like a
full build (``matcher.indexing``), which runs instead when there is no compatible snapshot to update.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig
from matcher.indexing import (
    NothingToIndex,
    Progress,
    bm25_info,
    build_full,
    build_lock,
    make_segment,
    publish_snapshot,
    write_segment,
)
from matcher.snapshot import (
    SegmentInfo,
    SnapshotFormatError,
    SnapshotManifest,
    find_live,
    live_positions,
    new_name,
    now,
    open_segments,
    pending_writes,
    read_live,
)
from matcher.store import Collection
from matcher.workspace import Workspace


@dataclass
class FlushResult:
    """What one ``update_snapshot`` did."""

    state: str  # published | current (nothing to do) | empty (no records)
    snapshot: Path | None = None
    full: bool = False  # a full build ran instead (no compatible snapshot to update)
    added: list[str] = field(default_factory=list)  # ids made searchable (new or changed)
    deleted: list[str] = field(default_factory=list)  # ids no longer searchable
    seconds: dict[str, float] = field(default_factory=dict)  # diff, embed, segment, publish, total

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "snapshot": self.snapshot.name if self.snapshot else None, "full": self.full,
                "added": len(self.added), "deleted": len(self.deleted), "seconds": self.seconds}



class Keep(enum.Enum):
    """``update_snapshot``'s default title model: the one the current snapshot was built with."""

    KEEP = "keep"


KEEP = Keep.KEEP


def _compatible(manifest: SnapshotManifest, dense_model: str | None, dense_text_chars: int,
                analyzer: AnalyzerConfig | None, bm25_params: dict[str, Any] | None, title_model: str | None) -> bool:
    if manifest.bm25 != bm25_info(analyzer, bm25_params) or manifest.title_model != title_model:
        return False
    if dense_model is None:
        return manifest.dense is None
    return manifest.dense is not None and manifest.dense.model == dense_model \
        and manifest.dense.text_chars == dense_text_chars


def update_snapshot(
    workspace: Workspace,
    kind: Collection,
    dense_model: str | None = None,
    dense_text_chars: int = 512,
    analyzer: AnalyzerConfig | None = None,
    bm25_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    title_model: str | Keep | None = KEEP,
) -> FlushResult:
    """Make every write to ``kind`` since the current snapshot searchable: a new segment of the new and changed
    records, deletions masked. Runs a full build when there is no snapshot to update (none, an older format, or
    built with another model, title model, text length, analyzer or BM25 parameters). ``title_model``: the title
    vectors' model (None: none); by default the current snapshot's, so a flush never drops them by omission."""
    started = time.perf_counter()
    with build_lock(workspace):
        workspace.prune_leftovers(kind)  # what killed builds left, even when there is nothing to flush
        folder = workspace.current_snapshot(kind)
        current = None
        if folder is not None:
            try:
                current = SnapshotManifest.read(folder)
            except SnapshotFormatError:
                current = None
        if isinstance(title_model, Keep):
            title_model = current.title_model if current is not None else None
        if current is None or not _compatible(current, dense_model, dense_text_chars, analyzer, bm25_params,
                                              title_model):
            try:
                path = build_full(workspace, kind, dense_model, dense_text_chars, "auto", analyzer, bm25_params,
                                  progress, title_model)
            except NothingToIndex:
                return FlushResult("empty")
            return FlushResult("published", path, full=True,
                               seconds={"total": round(time.perf_counter() - started, 3)})
        assert folder is not None
        return flush_over(workspace, kind, folder, current, dense_model, dense_text_chars, analyzer, progress, started)


def flush_over(workspace: Workspace, kind: Collection, folder: Path, current: SnapshotManifest, dense_model: str | None,
           dense_text_chars: int, analyzer: AnalyzerConfig | None, progress: Progress | None,
           started: float) -> FlushResult:
    """Flush the writes made since ``current`` (the snapshot in ``folder``) and publish; the caller holds the build
    lock. The new segment gets title vectors when ``current`` has them, by its title model."""
    seconds: dict[str, float] = {}
    with workspace.open_store() as store:
        data_version = store.data_version
        if not pending_writes(store, current):  # nothing for this collection (the other one may have changed)
            return FlushResult("current", folder)
        infos = current.segments
        masks_open = [read_live(folder, info.name, info.doc_count) for info in infos]
        changed = store.stamps(kind, after=current.stamp)  # before the records, as in a full build
        logged = store.deleted_since(kind, current.data_version)
        count = store.count(kind)
        live = {info.name: (np.ones(info.doc_count, dtype=bool) if mask is None else mask.copy())
                for info, mask in zip(infos, masks_open, strict=True)}
        wanted = set(changed) | set(logged)
        where = find_live(folder, current, masks_open, wanted)
        if where is None:  # a segment saved before segments kept an id lookup: read its ids
            _, segments_open, masks_open = open_segments(folder, with_dense=False)
            where = live_positions(segments_open, masks_open, wanted)
        new_ids = [i for i in changed if i not in where]
        deleted = [i for i in logged if i in where]
        if count != current.doc_count + len(new_ids) - len(deleted):
            # a deletion the log does not hold (made before it existed): compare every id
            _, segments_open, masks_open = open_segments(folder, with_dense=False)
            present = store.stamps(kind)
            where = live_positions(segments_open, masks_open)
            deleted = [i for i in where if i not in present]
        superseded = [i for i in changed if i in where]
        for doc_id in superseded + deleted:
            seg_index, local = where[doc_id]
            live[infos[seg_index].name][local] = False
        seconds["diff"] = round(time.perf_counter() - started, 3)
        segments = list(current.segments)
        made = None
        if changed:
            found = store.get_many(kind, list(changed))
            workspace.prune_leftovers(kind)
            made = make_segment(workspace, store, kind, iter(found.values()), changed, dense_model,
                                dense_text_chars, "auto", analyzer, progress, seconds, current.title_model)
        t_write = time.perf_counter()
        at = now()
        added: list[str] = []
        if made is not None:
            segment, _, titles = made
            if titles is not None and current.titles is not None and titles.fingerprint != current.titles.fingerprint:
                raise SnapshotFormatError(f"{folder}: title vectors of {current.titles.model} were made by another "
                                          "build of that model; rebuild with `pmatch index build --full`")
            write_segment(workspace, kind, segment, current.dense, current.titles)
            added = list(segment.ids)
            segments.append(SegmentInfo(name=segment.name, doc_count=len(segment), live_count=len(segment),
                                        created_at=at, origin="flush"))
            live[segment.name] = np.ones(len(segment), dtype=bool)
        seconds["segment_write"] = round(time.perf_counter() - t_write, 3)
    t_pub = time.perf_counter()
    segments = [s.model_copy(update={"live_count": int(live[s.name].sum())}) for s in segments]
    kept = [s for s in segments if s.live_count > 0 or s is segments[0]]
    manifest = current.model_copy(update={
        "name": new_name() + f"-v{data_version}", "data_version": data_version,
        "stamp": max([current.stamp, *changed.values()]), "doc_count": sum(s.live_count for s in kept),
        "built_at": at, "build_seconds": round(time.perf_counter() - started, 2),
        "last_write_at": at if (added or deleted) else current.last_write_at, "segments": kept,
        "last_flush": None})
    masks = {s.name: live[s.name] for s in kept if s.live_count < s.doc_count}
    seconds_total = seconds | {"publish": 0.0}
    manifest.last_flush = {"full": False, "added": len(added), "deleted": len(deleted), "seconds": seconds_total}
    path = publish_snapshot(workspace, kind, manifest, masks)
    seconds["publish"] = round(time.perf_counter() - t_pub, 3)
    seconds["total"] = round(time.perf_counter() - started, 3)
    return FlushResult("published", path, added=added, deleted=deleted, seconds=seconds)


