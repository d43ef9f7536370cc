"""Building the served indexes of one collection (patents or demands) from the store, as a new snapshot.

What is indexed (BM25 text, dense text) is defined in ``matcher.texts``. Vectors come through the vector cache,
so unchanged texts are never embedded twice."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig
from indexes.bm25 import BM25Index
from indexes.dense import DenseIndex, auto_index_type
from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache
from matcher.filters import FacetIndex, facet_spec
from matcher.records import Demand, Patent
from matcher.store import Collection, Store
from matcher.texts import dense_text, indexed_text
from matcher.workspace import Workspace

SNAPSHOT_FORMAT = 1
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
    """Build BM25 + facets (+ a dense index with ``dense_model``) for every stored record of ``kind`` into a new
    snapshot folder, then publish it atomically. Builds of one workspace run one at a time (a file lock), whether
    the CLI or a server's background rebuild started them."""
    with build_lock(workspace):
        return _build_snapshot(workspace, kind, dense_model, dense_text_chars, dense_index_type, analyzer, bm25_params,
                               progress)


@contextmanager
def build_lock(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace's build lock (``indexes/.build.lock``, an exclusive ``flock``) for the block."""
    path = workspace.home / "indexes" / ".build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_snapshot(workspace: Workspace, kind: Collection, dense_model: str | None, dense_text_chars: int,
                    dense_index_type: str, analyzer: AnalyzerConfig | None, bm25_params: dict[str, Any] | None,
                    progress: Progress | None) -> Path:
    started = time.time()
    with workspace.open_store() as store:
        data_version = store.data_version
        # One pass over the store: the records themselves are not kept (a million Patent objects are ~4 GB), only
        # what the indexes need: ids, BM25 texts, dense texts and the facet columns.
        ids: list[str] = []
        texts: list[str] = []
        dense_texts: list[str] = []

        def walk() -> Iterator[Patent | Demand]:
            for record in store.iter_records(kind):
                ids.append(record.id)
                texts.append(indexed_text(record))
                if dense_model:
                    dense_texts.append(dense_text(record, dense_text_chars))
                yield record

        facets = FacetIndex.build(facet_spec(kind), walk())
        if not ids:
            raise NothingToIndex(f"no {kind} in {workspace.store_path}: ingest some first")
        root = workspace.index_root(kind)
        root.mkdir(parents=True, exist_ok=True)
        workspace.prune_leftovers(kind)
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-v{data_version}-{time.time_ns() % 10**6:06d}"
        tmp = workspace.building_dir(kind, name)
        try:
            total = len(ids)

            def tick(done: int) -> None:
                if progress:
                    progress("tokenize", done, total)

            bm25 = BM25Index.build(ids, texts, analyzer, bm25_params, progress=tick)
            texts.clear()
            bm25.save(tmp / "bm25")
            facets.save(tmp / "facets")
            components: dict[str, Any] = {"bm25": bm25.manifest}
            del bm25
            if dense_model:
                embedder, vectors = embed_texts(workspace, dense_model, dense_texts, progress)
                dense_texts.clear()
                meta = {"model": dense_model, "fingerprint": embedder.fingerprint, "dim": embedder.dim,
                        "text_chars": dense_text_chars, "max_seq_length": embedder.max_seq_length}
                approximate = (auto_index_type(total) if dense_index_type == "auto" else dense_index_type) != "flat"
                queries = calibration_vectors(workspace, store, kind, dense_model, dense_text_chars) \
                    if approximate else None  # flat is exact: nothing to calibrate
                dense = DenseIndex.build(ids, vectors, index_type=dense_index_type, metadata=meta, queries=queries)
                dense.save(tmp / model_dir_name(dense_model))
                components["dense"] = {"dir": model_dir_name(dense_model), **dense.manifest}
            manifest = {
                "format": "patent-match/snapshot", "format_version": SNAPSHOT_FORMAT, "kind": kind,
                "name": name, "data_version": data_version, "doc_count": total,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.time() - started, 2),
                "components": components,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
            final = root / name
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    workspace.publish(kind, final)
    return final
