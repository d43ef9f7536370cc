"""Building the served indexes of one collection (patents or demands) from the store, as snapshots of segments.

What is indexed (BM25 text, dense text) is defined in ``matcher.texts``. Vectors come through the vector cache,
so unchanged texts are never embedded twice.

How (see ``matcher.snapshot`` for the layout): ``build_snapshot`` is the full build, one segment of every record,
built outside the build lock and published under it together with a flush of the writes made meanwhile.
``update_snapshot`` is a flush: it asks the store what changed since the current snapshot (records of batches
after its stamp; deletions when the counts disagree), writes one small segment of the new and changed records
(embedding only those), masks the positions they supersede or that were deleted, and publishes. Collection
statistics are global at query time (``indexes.bm25``), so the result searches exactly like a full build.
``merge_segments`` combines segments the tiered policy picks, without tokenizing or embedding again; it builds
outside the build lock and takes it only to place the merged segment and publish (re-applying deletions made
meanwhile), so flushes and searches go on while it runs.
"""

from __future__ import annotations

import fcntl
import math
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig
from indexes.bm25 import DEFAULT_PARAMS, BM25Segment, check_params
from indexes.dense import DenseIndex, auto_index_type
from indexes.dense_segments import merge_dense
from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache
from matcher.filters import FacetIndex, facet_spec
from matcher.pause_points import pause
from matcher.records import Demand, Patent
from matcher.snapshot import (
    DenseInfo,
    Segment,
    SegmentInfo,
    SnapshotFormatError,
    SnapshotManifest,
    live_positions,
    new_name,
    now,
    open_segments,
    open_snapshot,
    pending_writes,
    segments_root,
)
from matcher.store import Collection, Store
from matcher.texts import dense_text, indexed_text
from matcher.workspace import Workspace

CALIBRATION_SAMPLE = 256  # query-like vectors for calibrating an approximate dense index
Progress = Callable[[str, int, int], None]  # (stage, done, total)
def model_dir_name(model: str) -> str:
    return "dense-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name if "/" in model else model)


class NothingToIndex(Exception):
    pass


def embed_texts(workspace: Workspace, model: str, texts: Sequence[str], progress: Progress | None = None,
                stage: str = "embed") -> tuple[Any, Any]:
    """(embedder, float32 vectors) for ``texts``, through the workspace's vector cache."""
    embedder = load_embedder(model)

    def tick(done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)

    with VectorCache(workspace.vector_cache_path) as cache:
        vectors = cache.embed(embedder.fingerprint, texts, lambda batch: embedder.encode_documents(batch),
                              progress=tick)
    return embedder, vectors


def calibration_vectors(workspace: Workspace, store: Store, kind: Collection, model: str, chars: int,
                        size: int = CALIBRATION_SAMPLE, seed: int = 0) -> np.ndarray | None:
    """Vectors like the queries an index of ``kind`` will get, for calibrating its approximate search: the other
    side of the market (demands search patents, a patent is matched to demands), a seeded sample of up to
    ``size`` records, embedded as documents through the vector cache. None when the other side is empty."""
    other: Collection = "demands" if kind == "patents" else "patents"
    ids = store.ids(other)
    if not ids:
        return None
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(ids), size=min(size, len(ids)), replace=False).tolist())
    found = store.get_many(other, [ids[i] for i in picked])
    texts = [dense_text(record, chars) for record in found.values()]
    _, vectors = embed_texts(workspace, model, texts, stage="calibrate")
    return np.asarray(vectors, dtype=np.float32)


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


def build_snapshot(
    workspace: Workspace,
    kind: Collection,
    dense_model: str | None = None,
    dense_text_chars: int = 512,
    dense_index_type: str = "auto",
    analyzer: AnalyzerConfig | None = None,
    bm25_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build BM25 + facets (+ a dense index with ``dense_model``) for every stored record of ``kind`` into one new
    segment and snapshot, then publish it atomically. Full builds of one workspace run one at a time (a file lock,
    ``.full.lock``), whether the CLI or a server's background rebuild started them. The build itself runs outside
    the build lock, so flushes go on publishing writes meanwhile; it takes that lock only to publish, and then
    publishes the new segment together with whatever was written during the build (a flush over it), so no write
    a flush had made searchable disappears."""
    with build_lock(workspace, ".full.lock"):
        return _build_full(workspace, kind, dense_model, dense_text_chars, dense_index_type, analyzer, bm25_params,
                           progress, locked=False)


@contextmanager
def build_lock(workspace: Workspace, name: str = ".build.lock") -> Iterator[None]:
    """Hold one of the workspace's locks (``indexes/.build.lock``, an exclusive ``flock``) for the block."""
    path = workspace.home / "indexes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _dense_info(embedder: Any, model: str, chars: int) -> DenseInfo:
    return DenseInfo(dir=model_dir_name(model), model=model, fingerprint=embedder.fingerprint, dim=embedder.dim,
                     text_chars=chars, max_seq_length=embedder.max_seq_length)


def _make_segment(workspace: Workspace, store: Store, kind: Collection, records: Iterator[Patent | Demand],
                  stamps: dict[str, int], dense_model: str | None, dense_text_chars: int, dense_index_type: str,
                  analyzer: AnalyzerConfig | None, progress: Progress | None, seconds: dict[str, float],
                  total_hint: int = 0) -> tuple[Segment, DenseInfo | None] | None:
    """One segment of ``records`` (None when there are none); timings go into ``seconds``."""
    t0 = time.perf_counter()
    ids: list[str] = []
    texts: list[str] = []
    dense_texts: list[str] = []

    def walk() -> Iterator[Patent | Demand]:
        for record in records:
            ids.append(record.id)
            texts.append(indexed_text(record))
            if dense_model:
                dense_texts.append(dense_text(record, dense_text_chars))
            yield record

    facets = FacetIndex.build(facet_spec(kind), walk())
    if not ids:
        return None
    seconds["read"] = round(time.perf_counter() - t0, 3)
    t1 = time.perf_counter()

    def tick(done: int) -> None:
        if progress:
            progress("tokenize", done, len(ids))

    bm25 = BM25Segment.build(ids, texts, analyzer, progress=tick)
    texts.clear()
    name = new_name()
    building = workspace.building_dir(kind, "segment-" + name)
    bm25.save(building / "bm25")  # written while the dense part embeds; renamed into place by _write_segment
    facets.save(building / "facets")
    seconds["bm25"] = round(time.perf_counter() - t1, 3)
    dense = None
    info = None
    if dense_model:
        try:
            t2 = time.perf_counter()
            embedder, vectors = embed_texts(workspace, dense_model, dense_texts, progress)
            dense_texts.clear()
            seconds["embed"] = round(time.perf_counter() - t2, 3)
            t3 = time.perf_counter()
            info = _dense_info(embedder, dense_model, dense_text_chars)
            meta = info.model_dump(exclude={"dir"})
            approximate = (auto_index_type(len(ids)) if dense_index_type == "auto" else dense_index_type) != "flat"
            queries = calibration_vectors(workspace, store, kind, dense_model, dense_text_chars) \
                if approximate else None
            dense = DenseIndex.build(ids, vectors, index_type=dense_index_type, metadata=meta, queries=queries)
            seconds["dense_index"] = round(time.perf_counter() - t3, 3)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    stamp_array = np.fromiter((stamps.get(i, 0) for i in ids), dtype=np.int64, count=len(ids))
    return Segment(name, bm25, facets, dense, stamp_array), info


def _write_segment(workspace: Workspace, kind: Collection, segment: Segment, dense: DenseInfo | None) -> None:
    """Write ``segment`` beside the others (built in a ``.building-<pid>-*`` folder, then renamed into place)."""
    _place_segment(workspace, kind, _save_segment(workspace, kind, segment, dense), segment.name)


def _save_segment(workspace: Workspace, kind: Collection, segment: Segment, dense: DenseInfo | None) -> Path:
    """Write ``segment``'s files into its ``.building-<pid>-*`` folder; returns the folder."""
    tmp = workspace.building_dir(kind, "segment-" + segment.name)
    done = frozenset(part for part in ("bm25", "facets") if (tmp / part).is_dir())
    try:
        segment.save(tmp, dense.dir if dense else None, done)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pause("segment-saved", workspace.home)
    return tmp


def _place_segment(workspace: Workspace, kind: Collection, tmp: Path, name: str) -> None:
    """Rename a saved segment into ``segments/``. Under the build lock: a publish drops every segment there that no
    snapshot names, so a segment placed outside it could vanish before its snapshot is published."""
    root = segments_root(workspace.index_root(kind))
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.rename(root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pause("segment-placed", workspace.home)


def _publish(workspace: Workspace, kind: Collection, manifest: SnapshotManifest, live: dict[str, np.ndarray]) -> Path:
    """Write the snapshot folder (manifest, masks of segments with deletions), publish it, drop unused segments."""
    final = _write_snapshot(workspace, kind, manifest, live)
    _serve(workspace, kind, final)
    return final


def _write_snapshot(workspace: Workspace, kind: Collection, manifest: SnapshotManifest,
                    live: dict[str, np.ndarray]) -> Path:
    """Write a complete snapshot folder beside the served one (not served yet)."""
    root = workspace.index_root(kind)
    tmp = workspace.building_dir(kind, manifest.name)
    try:
        tmp.mkdir(parents=True)
        if live:
            (tmp / "live").mkdir()
            for name, mask in live.items():
                np.save(tmp / "live" / f"{name}.npy", np.asarray(mask, dtype=bool), allow_pickle=False)
        manifest.write(tmp)
        final = root / manifest.name
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pause("snapshot-written", workspace.home)
    return final


def _serve(workspace: Workspace, kind: Collection, snapshot: Path) -> None:
    """Point ``CURRENT`` at ``snapshot`` (atomic), then drop the segments no snapshot names."""
    workspace.publish(kind, snapshot)
    pause("published", workspace.home)
    _drop_unused_segments(workspace.index_root(kind))


def _drop_unused_segments(root: Path) -> None:
    used: set[str] = set()
    for snap in root.iterdir():
        if snap.is_dir() and not snap.name.startswith(".") and (snap / "manifest.json").is_file():
            try:
                used.update(s.name for s in SnapshotManifest.read(snap).segments)
            except (SnapshotFormatError, ValueError):
                continue
    seg_root = segments_root(root)
    if seg_root.is_dir():
        for seg in seg_root.iterdir():
            if seg.name not in used:
                shutil.rmtree(seg, ignore_errors=True)


def _bm25_info(analyzer: AnalyzerConfig | None, params: dict[str, Any] | None) -> dict[str, Any]:
    return {"params": {**DEFAULT_PARAMS, **(params or {})}, "analyzer": (analyzer or AnalyzerConfig()).to_dict()}


def _build_full(workspace: Workspace, kind: Collection, dense_model: str | None, dense_text_chars: int,
                dense_index_type: str, analyzer: AnalyzerConfig | None, bm25_params: dict[str, Any] | None,
                progress: Progress | None, locked: bool = True) -> Path:
    """The full build; ``locked``: the caller holds the build lock, else it is taken only to publish."""
    started = time.time()
    check_params(bm25_params)
    with workspace.open_store() as store:
        data_version = store.data_version
        stamps = store.stamps(kind)  # before the records: a write in between shows up as pending, never lost
        workspace.prune_leftovers(kind)
        seconds: dict[str, float] = {}
        made = _make_segment(workspace, store, kind, store.iter_records(kind), stamps, dense_model, dense_text_chars,
                             dense_index_type, analyzer, progress, seconds)
        if made is None:
            raise NothingToIndex(f"no {kind} in {workspace.store_path}: ingest some first")
        segment, dense = made
        if locked:
            _write_segment(workspace, kind, segment, dense)
        else:
            saved = _save_segment(workspace, kind, segment, dense)
    at = now()
    manifest = SnapshotManifest(
        kind=kind, name=new_name() + f"-v{data_version}", data_version=data_version,
        stamp=max(stamps.values(), default=0), doc_count=len(segment), built_at=at,
        build_seconds=round(time.time() - started, 2), full_built_at=at, last_write_at=at,
        bm25=_bm25_info(analyzer, bm25_params), dense=dense,
        segments=[SegmentInfo(name=segment.name, doc_count=len(segment), live_count=len(segment), created_at=at,
                              origin="full")],
        last_flush={"full": True, "added": len(segment), "deleted": 0, "seconds": seconds})
    if locked:
        return _publish(workspace, kind, manifest, {})
    try:
        with build_lock(workspace):
            _place_segment(workspace, kind, saved, segment.name)
            folder = _write_snapshot(workspace, kind, manifest, {})
            caught_up = _flush(workspace, kind, folder, manifest, dense_model, dense_text_chars, analyzer, None,
                               time.perf_counter())  # what was written while this build ran
            if caught_up.state == "published" and caught_up.snapshot is not None:
                return caught_up.snapshot
            _serve(workspace, kind, folder)
            return folder
    finally:
        shutil.rmtree(saved, ignore_errors=True)  # gone once placed; what a failure before placing left


def _compatible(manifest: SnapshotManifest, dense_model: str | None, dense_text_chars: int,
                analyzer: AnalyzerConfig | None, bm25_params: dict[str, Any] | None) -> bool:
    if manifest.bm25 != _bm25_info(analyzer, bm25_params):
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
) -> FlushResult:
    """Make every write to ``kind`` since the current snapshot searchable: a new segment of the new and changed
    records, deletions masked. Runs a full build when there is no snapshot to update (none, an older format, or
    built with another model, text length, analyzer or BM25 parameters)."""
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
        if current is None or not _compatible(current, dense_model, dense_text_chars, analyzer, bm25_params):
            try:
                path = _build_full(workspace, kind, dense_model, dense_text_chars, "auto", analyzer, bm25_params,
                                   progress)
            except NothingToIndex:
                return FlushResult("empty")
            return FlushResult("published", path, full=True,
                               seconds={"total": round(time.perf_counter() - started, 3)})
        assert folder is not None
        return _flush(workspace, kind, folder, current, dense_model, dense_text_chars, analyzer, progress, started)


def _flush(workspace: Workspace, kind: Collection, folder: Path, current: SnapshotManifest, dense_model: str | None,
           dense_text_chars: int, analyzer: AnalyzerConfig | None, progress: Progress | None,
           started: float) -> FlushResult:
    seconds: dict[str, float] = {}
    with workspace.open_store() as store:
        data_version = store.data_version
        if not pending_writes(store, current):  # nothing for this collection (the other one may have changed)
            return FlushResult("current", folder)
        _, segments_open, masks_open = open_segments(folder)
        changed = store.stamps(kind, after=current.stamp)  # before the records, as in a full build
        count = store.count(kind)
        live = {seg.name: (np.ones(len(seg), dtype=bool) if mask is None else mask.copy())
                for seg, mask in zip(segments_open, masks_open, strict=True)}
        where = live_positions(segments_open, masks_open)
        new_ids = [i for i in changed if i not in where]
        deleted: list[str] = []
        if count != current.doc_count + len(new_ids):  # something was deleted: find what
            present = store.stamps(kind)
            deleted = [i for i in where if i not in present]
        superseded = [i for i in changed if i in where]
        for doc_id in superseded + deleted:
            seg_index, local = where[doc_id]
            live[segments_open[seg_index].name][local] = False
        seconds["diff"] = round(time.perf_counter() - started, 3)
        segments = list(current.segments)
        made = None
        if changed:
            found = store.get_many(kind, list(changed))
            workspace.prune_leftovers(kind)
            made = _make_segment(workspace, store, kind, iter(found.values()), changed, dense_model,
                                 dense_text_chars, "auto", analyzer, progress, seconds)
        t_write = time.perf_counter()
        at = now()
        added: list[str] = []
        if made is not None:
            segment, _ = made
            _write_segment(workspace, kind, segment, current.dense)
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
    path = _publish(workspace, kind, manifest, masks)
    seconds["publish"] = round(time.perf_counter() - t_pub, 3)
    seconds["total"] = round(time.perf_counter() - started, 3)
    return FlushResult("published", path, added=added, deleted=deleted, seconds=seconds)


MERGE_FACTOR = 10  # segments of one size tier that trigger a merge
MERGE_FLOOR_DOCS = 1_000  # segments below this size are all in the lowest tier
EXPUNGE_DELETED_SHARE = 0.5  # a segment with more of its positions deleted is rewritten


def merge_plan(segments: Sequence[SegmentInfo], factor: int = MERGE_FACTOR, floor: int = MERGE_FLOOR_DOCS
               ) -> list[str]:
    """Lucene-style tiered merging: segments fall into tiers by live size (powers of ``factor`` above ``floor``);
    the lowest tier holding ``factor`` segments merges them into one of the next tier, so a write costs O(log n)
    merge work over time and the segment count stays ~ factor x tiers. Failing that, a segment more than
    ``EXPUNGE_DELETED_SHARE`` deleted is rewritten. Returns the names to merge ([] = nothing to do)."""
    tiers: dict[int, list[SegmentInfo]] = {}
    for seg in segments:
        tier = int(math.log(max(seg.live_count, floor) / floor, factor)) if seg.live_count else 0
        tiers.setdefault(tier, []).append(seg)
    for tier in sorted(tiers):
        group = tiers[tier]
        if len(group) >= factor:
            return [s.name for s in sorted(group, key=lambda s: s.live_count)[:factor]]
    for seg in segments:
        if seg.doc_count and (seg.doc_count - seg.live_count) / seg.doc_count > EXPUNGE_DELETED_SHARE:
            return [seg.name]
    return []


def merge_segments(workspace: Workspace, kind: Collection, dense_model: str | None = None, dense_text_chars: int = 512,
                   force: bool = False) -> Path | None:
    """Merge what ``merge_plan`` picks (``force``: every segment into one) into one segment, without tokenizing or
    embedding again, and publish. Builds outside the build lock (flushes go on meanwhile) and publishes under it,
    masking what flushes deleted or superseded in the merged segments since. None when there was nothing to do."""
    started = time.perf_counter()
    with build_lock(workspace, ".merge.lock"):
        folder = workspace.current_snapshot(kind)
        if folder is None:
            return None
        manifest = workspace.current_manifest(kind)
        if manifest is None:
            return None
        plan = [s.name for s in manifest.segments] if force else merge_plan(manifest.segments)
        if not plan or (force and len(plan) == 1 and manifest.deleted_count == 0):
            return None
        opened = open_snapshot(folder)
        chosen = [(seg, mask) for seg, mask in zip(opened.segments, opened.live, strict=True) if seg.name in plan]
        sources: list[tuple[str, np.ndarray]] = []
        facets: list[FacetIndex] = []
        stamps: list[np.ndarray] = []
        for seg, mask in chosen:
            keep = np.arange(len(seg)) if mask is None else np.flatnonzero(mask)
            sources.append((seg.name, keep))
            facets.append(seg.facets.take(keep))
            stamps.append(np.asarray(seg.stamps)[keep])
        bm25 = BM25Segment.merge([(seg.bm25, mask) for seg, mask in chosen])
        dense = None
        if manifest.dense is not None:
            size = int(sum(k.size for _, k in sources))
            queries = None
            if auto_index_type(size) != "flat":
                with workspace.open_store() as store:
                    queries = calibration_vectors(workspace, store, kind, manifest.dense.model,
                                                  manifest.dense.text_chars)
            dense = merge_dense([(seg.dense, mask) for seg, mask in chosen if seg.dense is not None],
                                queries=queries)
        merged = Segment(new_name(), bm25, FacetIndex.concat(facets), dense, np.concatenate(stamps))
        workspace.prune_leftovers(kind)
        saved = _save_segment(workspace, kind, merged, manifest.dense)
        try:
            with build_lock(workspace):
                _place_segment(workspace, kind, saved, merged.name)
                return _publish_merge(workspace, kind, merged, sources, started)
        finally:
            shutil.rmtree(saved, ignore_errors=True)  # gone once placed; what a failure before placing left


def _publish_merge(workspace: Workspace, kind: Collection, merged: Segment, sources: list[tuple[str, np.ndarray]],
                   started: float) -> Path | None:
    folder = workspace.current_snapshot(kind)
    manifest = workspace.current_manifest(kind)
    names = [name for name, _ in sources]
    if folder is None or manifest is None or not set(names) <= {s.name for s in manifest.segments}:
        shutil.rmtree(segments_root(workspace.index_root(kind)) / merged.name, ignore_errors=True)
        return None  # a full build replaced the snapshot meanwhile
    opened = open_snapshot(folder)
    live_now = {seg.name: mask for seg, mask in zip(opened.segments, opened.live, strict=True)}
    merged_live = np.concatenate([np.ones(keep.size, dtype=bool) if live_now[name] is None else live_now[name][keep]
                                  for name, keep in sources])
    at = now()
    info = SegmentInfo(name=merged.name, doc_count=len(merged), live_count=int(merged_live.sum()), created_at=at,
                       origin="merge")
    segments: list[SegmentInfo] = []
    masks: dict[str, np.ndarray] = {}
    for seg in manifest.segments:
        if seg.name == names[0]:
            segments.append(info)
            if info.live_count < info.doc_count:
                masks[info.name] = merged_live
        elif seg.name not in names:
            segments.append(seg)
            if live_now[seg.name] is not None:
                masks[seg.name] = live_now[seg.name]  # type: ignore[assignment]
    out = manifest.model_copy(update={
        "name": new_name() + f"-v{manifest.data_version}", "built_at": at, "segments": segments,
        "build_seconds": round(time.perf_counter() - started, 2),
        "last_flush": {"merge": names, "seconds": round(time.perf_counter() - started, 3)}})
    return _publish(workspace, kind, out, masks)
