"""A published snapshot of one kind's indexes: immutable segments plus live masks, described by one typed manifest.

    HOME/indexes/<kind>/segments/<segment>/   bm25/, facets/, dense-<model>/, titles-<model>.npy, stamps.npy,
                                              segment.json
    HOME/indexes/<kind>/<snapshot>/           manifest.json (``SnapshotManifest``), live/<segment>.npy

A segment holds the indexes of one run of records (a full build, one flush of new or changed records, or a merge)
and never changes once written. A snapshot names its segments in order and, for each segment some of whose
records were deleted or superseded since, a live mask (False = not searchable). Publishing writes a new snapshot
folder (small: a manifest and masks) and replaces ``CURRENT`` in one ``os.replace``; a reader opens the old
snapshot or the new one, never a mix. Segments no kept snapshot names are removed after a publish.

``titles-<model>.npy`` holds, per position, the float16 unit vector of the record's title (``matcher.texts.
title_text``) for the learned ranker's title channel: rows read by position, never searched.

``stamps.npy`` holds, per position, the ingest batch that last changed the record (``Store.stamps``): a flush
asks the store only for records changed in a batch after the snapshot's ``stamp``.

Opened segments are immutable, so a process keeps them (``SegmentCache``): opening the snapshot after a flush
reads only the new segment and the masks.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from indexes.bm25 import BM25Index
from indexes.bm25_segment import BM25Segment, find_positions
from indexes.dense import DenseIndex
from indexes.dense_segments import SegmentedDense, SegmentRows
from matcher.facet_index import FacetIndex
from matcher.store import Collection, Store

FORMAT = "patent-match/snapshot"
FORMAT_VERSION = 2
SEGMENTS = "segments"


class SnapshotFormatError(ValueError):
    pass


class DenseInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    dir: str  # the segment subfolder: dense-<model>
    model: str
    fingerprint: str
    dim: int
    text_chars: int
    max_seq_length: int | None = None


class TitleInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    file: str  # the segment file: titles-<model>.npy
    model: str
    fingerprint: str
    dim: int


class SegmentInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    doc_count: int  # positions in the segment
    live_count: int  # positions still searchable in this snapshot
    created_at: str
    origin: Literal["full", "flush", "merge"]


class SnapshotManifest(BaseModel):
    """What a published snapshot is: its segments, the store state it covers, and how it was built."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["patent-match/snapshot"] = FORMAT
    format_version: int = FORMAT_VERSION
    kind: Collection
    name: str
    data_version: int  # the store's data_version this snapshot covers
    stamp: int  # the newest ingest batch covered (records changed after it are pending)
    doc_count: int  # searchable records
    built_at: str  # when this snapshot was published
    build_seconds: float
    full_built_at: str  # when the oldest segment's full build ran
    last_write_at: str | None = None  # when the newest indexed write became searchable
    bm25: dict[str, Any]  # parameters and analyzer
    dense: DenseInfo | None = None
    titles: TitleInfo | None = None  # the title channel's vectors (None: not built)
    segments: list[SegmentInfo] = Field(default_factory=list)
    last_flush: dict[str, Any] | None = None  # what the flush that published this did: added, deleted, seconds

    @property
    def deleted_count(self) -> int:
        return sum(s.doc_count - s.live_count for s in self.segments)

    @property
    def dense_model(self) -> str | None:
        return self.dense.model if self.dense else None

    @property
    def title_model(self) -> str | None:
        return self.titles.model if self.titles else None

    @classmethod
    def read(cls, folder: Path) -> SnapshotManifest:
        path = folder / "manifest.json"
        raw = json.loads(path.read_text("utf-8"))
        if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
            raise SnapshotFormatError(
                f"{path}: snapshot format {raw.get('format')!r} v{raw.get('format_version')} is not readable by this "
                f"build (v{FORMAT_VERSION}); rebuild with `pmatch index build --full`")
        return cls.model_validate(raw)

    def write(self, folder: Path) -> None:
        (folder / "manifest.json").write_text(self.model_dump_json(indent=2), "utf-8")

    def summary(self) -> dict[str, Any]:
        """What status pages show: segments, deletions and freshness."""
        return {"segments": len(self.segments), "deleted": self.deleted_count, "doc_count": self.doc_count,
                "last_write_at": self.last_write_at, "full_built_at": self.full_built_at,
                "segment_sizes": [s.live_count for s in self.segments]}


def segments_root(index_root: Path) -> Path:
    return index_root / SEGMENTS


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_name() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**9:09d}"


@dataclass
class Segment:
    """One opened segment: its BM25 part, facets, dense part (or None), per-position stamps and title vectors
    (float16 (n, dim), or None)."""

    name: str
    bm25: BM25Segment
    facets: FacetIndex
    dense: DenseIndex | None
    stamps: np.ndarray
    titles: np.ndarray | None = None

    @property
    def ids(self) -> list[str]:
        return self.bm25.ids

    def __len__(self) -> int:
        return len(self.bm25)

    @classmethod
    def load(cls, folder: Path, dense_dir: str | None, mmap: bool = True, titles_file: str | None = None) -> Segment:
        dense = DenseIndex.load(folder / dense_dir, mmap=mmap) if dense_dir else None
        mode = "r" if mmap else None
        titles = None
        if titles_file:
            titles = np.load(folder / titles_file, mmap_mode=mode, allow_pickle=False)
            if titles.dtype != np.float16 or titles.ndim != 2:
                raise SnapshotFormatError(f"{folder / titles_file}: title vectors of {titles.dtype} {titles.shape}, "
                                          "expected float16 (n, dim)")
        segment = cls(folder.name, BM25Segment.load(folder / "bm25", mmap=mmap), FacetIndex.load(folder / "facets"),
                      dense, np.load(folder / "stamps.npy", mmap_mode=mode), titles)
        if titles is not None and len(titles) != len(segment):
            raise SnapshotFormatError(f"{folder / titles_file}: {len(titles)} title vectors for {len(segment)} records")
        return segment

    def save(self, folder: Path, dense_dir: str | None, done: frozenset[str] = frozenset(),
             titles_file: str | None = None) -> None:
        """Write into ``folder`` (a fresh building folder the caller renames into place); ``done``: parts
        ("bm25", "facets") already written there."""
        folder.mkdir(parents=True, exist_ok=True)
        if "bm25" not in done:
            self.bm25.save(folder / "bm25")
        if "facets" not in done:
            self.facets.save(folder / "facets")
        if self.dense is not None and dense_dir:
            self.dense.save(folder / dense_dir)
        if self.titles is not None and titles_file:
            np.save(folder / titles_file, np.asarray(self.titles, dtype=np.float16), allow_pickle=False)
        np.save(folder / "stamps.npy", np.asarray(self.stamps, dtype=np.int64), allow_pickle=False)
        (folder / "segment.json").write_text(json.dumps({"name": self.name, "doc_count": len(self)}), "utf-8")


class SegmentCache:
    """Opened segments of this process by folder (they never change); keeps those the newest opens used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: dict[tuple[str, str | None, bool, str | None], Segment] = {}

    def get(self, folder: Path, dense_dir: str | None, mmap: bool, titles_file: str | None = None) -> Segment:
        key = (str(folder), dense_dir, mmap, titles_file)
        with self._lock:
            found = self._segments.get(key)
        if found is None:
            found = Segment.load(folder, dense_dir, mmap, titles_file)
            with self._lock:
                self._segments[key] = found
        return found

    def keep_only(self, root: Path, folders: set[str]) -> None:
        """Forget the segments under ``root`` (one kind's) that are not in ``folders``."""
        with self._lock:
            self._segments = {k: v for k, v in self._segments.items()
                              if k[0] in folders or Path(k[0]).parent != root}


_CACHE = SegmentCache()


def read_live(snapshot: Path, segment: str, size: int) -> np.ndarray | None:
    path = snapshot / "live" / f"{segment}.npy"
    if not path.is_file():
        return None
    mask = np.load(path, allow_pickle=False)
    if mask.shape != (size,) or mask.dtype != np.bool_:
        raise SnapshotFormatError(f"{path}: live mask of shape {mask.shape} {mask.dtype}, expected ({size},) bool")
    return mask


@dataclass
class OpenedSnapshot:
    """A snapshot's segments opened and joined: one BM25 index, one facet index, one dense index and the title
    vectors by position (positions run across the segments in order; deleted positions never match)."""

    manifest: SnapshotManifest
    segments: list[Segment]
    live: list[np.ndarray | None]
    bm25: BM25Index
    facets: FacetIndex
    dense: SegmentedDense | None
    titles: SegmentRows | None = None


def open_segments(folder: Path, mmap: bool = True, cache: SegmentCache | None = None, with_dense: bool = True
                  ) -> tuple[SnapshotManifest, list[Segment], list[np.ndarray | None]]:
    """A snapshot's manifest, its opened segments and their live masks (None: all live), not joined;
    ``with_dense=False`` leaves the dense parts unread (a flush needs only ids: at a million records the dense
    part's ids alone take a fresh process a second to parse)."""
    manifest = SnapshotManifest.read(folder)
    cache = cache or _CACHE
    root = segments_root(folder.parent)
    dense_dir = manifest.dense.dir if manifest.dense and with_dense else None
    titles_file = manifest.titles.file if manifest.titles and with_dense else None
    segments = [cache.get(root / info.name, dense_dir, mmap, titles_file) for info in manifest.segments]
    live = [read_live(folder, seg.name, len(seg)) for seg in segments]
    cache.keep_only(root, {str(root / s.name) for s in segments})
    return manifest, segments, live


def live_positions(segments: list[Segment], live: list[np.ndarray | None],
                   wanted: set[str] | None = None) -> dict[str, tuple[int, int]]:
    """id -> (segment index, position in it) of every live record, or only of those in ``wanted``."""
    out: dict[str, tuple[int, int]] = {}
    for i, (seg, mask) in enumerate(zip(segments, live, strict=True)):
        ids = seg.ids
        if wanted is None:
            keep = range(len(seg)) if mask is None else np.flatnonzero(mask).tolist()
        else:
            keep = [j for j, doc_id in enumerate(ids) if doc_id in wanted and (mask is None or mask[j])]
        out.update((ids[j], (i, j)) for j in keep)
    return out


def find_live(folder: Path, manifest: SnapshotManifest, live: list[np.ndarray | None],
              wanted: set[str]) -> dict[str, tuple[int, int]] | None:
    """``live_positions`` of only the ids in ``wanted``, by each segment's id lookup, without opening the segments
    (a flush at a million records: milliseconds, not a parse of every id); None if a segment has no lookup."""
    root = segments_root(folder.parent)
    out: dict[str, tuple[int, int]] = {}
    for i, (info, mask) in enumerate(zip(manifest.segments, live, strict=True)):
        found = find_positions(root / info.name / "bm25", wanted)
        if found is None:
            return None
        out.update((doc_id, (i, j)) for doc_id, j in found.items() if mask is None or mask[j])
    return out


def open_snapshot(folder: Path, mmap: bool = True, cache: SegmentCache | None = None) -> OpenedSnapshot:
    manifest, segments, live = open_segments(folder, mmap, cache)
    dense_dir = manifest.dense.dir if manifest.dense else None
    bm25 = BM25Index([s.bm25 for s in segments], live, params=manifest.bm25.get("params"))
    facets = FacetIndex.concat([s.facets for s in segments], live)
    dense = None
    if dense_dir:
        parts = [s.dense for s in segments]
        if any(p is None for p in parts):
            raise SnapshotFormatError(f"{folder}: a segment lacks its dense part {dense_dir}")
        dense = SegmentedDense([p for p in parts if p is not None], live)
    titles = None
    if manifest.titles:
        blocks = [s.titles for s in segments]
        if any(b is None for b in blocks):
            raise SnapshotFormatError(f"{folder}: a segment lacks its title vectors {manifest.titles.file}")
        titles = SegmentRows([b for b in blocks if b is not None])
    return OpenedSnapshot(manifest, segments, live, bm25, facets, dense, titles)


def pending_writes(store: Store, manifest: SnapshotManifest) -> bool:
    """Whether the store holds writes to this snapshot's collection that it does not cover: a record changed in a
    batch after its stamp, or a count that disagrees (a delete). Writes to the other collection do not count."""
    if store.data_version == manifest.data_version:
        return False
    return bool(store.stamps(manifest.kind, after=manifest.stamp)) or store.count(manifest.kind) != manifest.doc_count
