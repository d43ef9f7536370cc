"""Merging segments: the tiered policy (``merge_plan``) and ``merge_segments``, which combines the segments it picks
into one without tokenizing or embedding again (the dense part, and the title vectors row for row). It builds
outside the build lock and takes it only to place the merged segment and publish (re-applying deletions made
meanwhile), so flushes and searches go on while it runs.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexes.bm25_segment import BM25Segment
from indexes.dense import auto_index_type
from indexes.dense_segments import merge_dense
from matcher.facet_index import FacetIndex
from matcher.indexing import build_lock, calibration_vectors, place_segment, publish_snapshot, save_segment
from matcher.snapshot import (
    Segment,
    SegmentInfo,
    new_name,
    now,
    open_snapshot,
    segments_root,
)
from matcher.store import Collection
from matcher.workspace import Workspace

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
        titles: list[np.ndarray] = []
        for seg, mask in chosen:
            keep = np.arange(len(seg)) if mask is None else np.flatnonzero(mask)
            sources.append((seg.name, keep))
            facets.append(seg.facets.take(keep))
            stamps.append(np.asarray(seg.stamps)[keep])
            if seg.titles is not None:
                titles.append(np.asarray(seg.titles[keep], dtype=np.float16))
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
        merged_titles = np.concatenate(titles) if manifest.titles is not None else None
        merged = Segment(new_name(), bm25, FacetIndex.concat(facets), dense, np.concatenate(stamps), merged_titles)
        workspace.prune_leftovers(kind)
        saved = save_segment(workspace, kind, merged, manifest.dense, manifest.titles)
        try:
            with build_lock(workspace):
                place_segment(workspace, kind, saved, merged.name)
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
    return publish_snapshot(workspace, kind, out, masks)
