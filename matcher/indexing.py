"""Building the served indexes of one collection (patents or demands) from the store, as snapshots of segments:
the full build, and the pieces every build, flush and merge shares (making, writing and publishing a segment).

What is indexed (BM25 text, dense text) is defined in ``matcher.texts``. Vectors come through the vector cache,
so unchanged texts are never embedded twice.

How (see ``matcher.snapshot`` for the layout): the full build is ``matcher.full_build.build_snapshot``, one segment
of every record, built outside the build lock and published under it with a flush of the writes made meanwhile.
Flushing the writes made since a snapshot is ``matcher.flush.update_snapshot``; merging segments is
``matcher.merge.merge_segments``. Every publish takes the workspace's build lock (``build_lock``), and a segment is
placed into ``segments/`` only under it (a publish drops the segments no snapshot names).
"""

from __future__ import annotations

import fcntl
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig
from indexes.bm25 import DEFAULT_PARAMS, check_params
from indexes.bm25_segment import BM25Segment
from indexes.dense import DenseIndex, auto_index_type
from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache
from matcher.facet_index import FacetIndex, facet_spec
from matcher.i18n import LocalisedError
from matcher.pause_points import pause
from matcher.records import Demand, Patent
from matcher.snapshot import (
    DenseInfo,
    Segment,
    SegmentInfo,
    SnapshotFormatError,
    SnapshotManifest,
    TitleInfo,
    new_name,
    now,
    segments_root,
)
from matcher.store import Collection, Store
from matcher.texts import dense_text, indexed_text, title_text
from matcher.workspace import Workspace

CALIBRATION_SAMPLE = 256  # query-like vectors for calibrating an approximate dense index
Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _safe_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name if "/" in model else model)


def model_dir_name(model: str) -> str:
    return "dense-" + _safe_name(model)


def titles_file_name(model: str) -> str:
    return f"titles-{_safe_name(model)}.npy"


class NothingToIndex(LocalisedError):
    """The store holds no record of the kind to index."""


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


def make_segment(workspace: Workspace, store: Store, kind: Collection, records: Iterator[Patent | Demand],
                 stamps: dict[str, int], dense_model: str | None, dense_text_chars: int, dense_index_type: str,
                 analyzer: AnalyzerConfig | None, progress: Progress | None, seconds: dict[str, float],
                 title_model: str | None = None) -> tuple[Segment, DenseInfo | None, TitleInfo | None] | None:
    """One segment of ``records`` (None when there are none), with title vectors by ``title_model`` (None: none);
    timings go into ``seconds``."""
    t0 = time.perf_counter()
    ids: list[str] = []
    texts: list[str] = []
    dense_texts: list[str] = []
    title_texts: list[str] = []

    def walk() -> Iterator[Patent | Demand]:
        for record in records:
            ids.append(record.id)
            texts.append(indexed_text(record))
            if dense_model:
                dense_texts.append(dense_text(record, dense_text_chars))
            if title_model:
                title_texts.append(title_text(record))
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
    bm25.save(building / "bm25")  # written while the dense part embeds; renamed into place by place_segment
    facets.save(building / "facets")
    seconds["bm25"] = round(time.perf_counter() - t1, 3)
    dense = None
    info = None
    titles = None
    title_info = None
    if title_model:
        try:
            t_titles = time.perf_counter()
            title_embedder, title_vectors = embed_texts(workspace, title_model, title_texts, progress,
                                                        stage="embed_titles")
            title_texts.clear()
            titles = np.asarray(title_vectors, dtype=np.float16).reshape(len(ids), title_embedder.dim)
            title_info = TitleInfo(file=titles_file_name(title_model), model=title_model,
                                   fingerprint=title_embedder.fingerprint, dim=title_embedder.dim)
            seconds["embed_titles"] = round(time.perf_counter() - t_titles, 3)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
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
    return Segment(name, bm25, facets, dense, stamp_array, titles), info, title_info


def write_segment(workspace: Workspace, kind: Collection, segment: Segment, dense: DenseInfo | None,
                  titles: TitleInfo | None = None) -> None:
    """Write ``segment`` beside the others (built in a ``.building-<pid>-*`` folder, then renamed into place); the
    caller holds the build lock."""
    place_segment(workspace, kind, save_segment(workspace, kind, segment, dense, titles), segment.name)


def save_segment(workspace: Workspace, kind: Collection, segment: Segment, dense: DenseInfo | None,
                 titles: TitleInfo | None = None) -> Path:
    """Write ``segment``'s files into its ``.building-<pid>-*`` folder; returns the folder (no lock needed)."""
    tmp = workspace.building_dir(kind, "segment-" + segment.name)
    done = frozenset(part for part in ("bm25", "facets") if (tmp / part).is_dir())
    try:
        segment.save(tmp, dense.dir if dense else None, done, titles.file if titles else None)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pause("segment-saved", workspace.home)
    return tmp


def place_segment(workspace: Workspace, kind: Collection, tmp: Path, name: str) -> None:
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


def publish_snapshot(workspace: Workspace, kind: Collection, manifest: SnapshotManifest,
                     live: dict[str, np.ndarray]) -> Path:
    """Write the snapshot folder (manifest, masks of segments with deletions), publish it, drop unused segments."""
    final = write_snapshot(workspace, kind, manifest, live)
    serve_snapshot(workspace, kind, final)
    return final


def write_snapshot(workspace: Workspace, kind: Collection, manifest: SnapshotManifest,
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


def serve_snapshot(workspace: Workspace, kind: Collection, snapshot: Path) -> None:
    """Point ``CURRENT`` at ``snapshot`` (atomic), then drop the segments no snapshot names and the deletion log
    it covers (every publish, by flush, merge or full build, passes here)."""
    workspace.publish(kind, snapshot)
    pause("published", workspace.home)
    _drop_unused_segments(workspace.index_root(kind))
    with workspace.open_store() as store:
        store.forget_deletions(kind, SnapshotManifest.read(snapshot).data_version)


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


def bm25_info(analyzer: AnalyzerConfig | None, params: dict[str, Any] | None) -> dict[str, Any]:
    return {"params": {**DEFAULT_PARAMS, **(params or {})}, "analyzer": (analyzer or AnalyzerConfig()).to_dict()}


def build_full(workspace: Workspace, kind: Collection, dense_model: str | None, dense_text_chars: int,
               dense_index_type: str, analyzer: AnalyzerConfig | None, bm25_params: dict[str, Any] | None,
               progress: Progress | None, title_model: str | None = None) -> Path:
    """A full build published at once, for a caller that holds the build lock (``matcher.full_build`` builds
    outside it)."""
    saved, segment, manifest = prepare_full(workspace, kind, dense_model, dense_text_chars, dense_index_type,
                                            analyzer, bm25_params, progress, title_model)
    place_segment(workspace, kind, saved, segment.name)
    return publish_snapshot(workspace, kind, manifest, {})


def prepare_full(workspace: Workspace, kind: Collection, dense_model: str | None, dense_text_chars: int,
                 dense_index_type: str, analyzer: AnalyzerConfig | None, bm25_params: dict[str, Any] | None,
                 progress: Progress | None, title_model: str | None = None
                 ) -> tuple[Path, Segment, SnapshotManifest]:
    """One segment of every stored record, saved but not placed, and the manifest of its snapshot (no lock needed)."""
    started = time.time()
    check_params(bm25_params)
    with workspace.open_store() as store:
        data_version = store.data_version
        stamps = store.stamps(kind)  # before the records: a write in between shows up as pending, never lost
        workspace.prune_leftovers(kind)
        seconds: dict[str, float] = {}
        made = make_segment(workspace, store, kind, store.iter_records(kind), stamps, dense_model, dense_text_chars,
                            dense_index_type, analyzer, progress, seconds, title_model)
        if made is None:
            raise NothingToIndex("index.nothing", kind=kind, store=str(workspace.store_path))
        segment, dense, titles = made
        saved = save_segment(workspace, kind, segment, dense, titles)
    at = now()
    manifest = SnapshotManifest(
        kind=kind, name=new_name() + f"-v{data_version}", data_version=data_version,
        stamp=max(stamps.values(), default=0), doc_count=len(segment), built_at=at,
        build_seconds=round(time.time() - started, 2), full_built_at=at, last_write_at=at,
        bm25=bm25_info(analyzer, bm25_params), dense=dense, titles=titles,
        segments=[SegmentInfo(name=segment.name, doc_count=len(segment), live_count=len(segment), created_at=at,
                              origin="full")],
        last_flush={"full": True, "added": len(segment), "deleted": 0, "seconds": seconds})
    return saved, segment, manifest
