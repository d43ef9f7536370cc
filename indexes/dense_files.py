"""A dense index's files: the format (name, version, file names), the manifest, and writing and reading the folder.

On disk (``DenseIndex.save(dir)`` / ``DenseIndex.load(dir, mmap=True)``), plain files, no pickles::

    manifest.json   format name + format_version, kind (the index type), every build parameter, calibration, metadata
    ids.json        the ids, in position order
    vectors.npy     the normalised vectors as float16 (enough to ``rebuild`` without re-embedding)
    index.faiss     faiss's own index file (read with IO_FLAG_MMAP_IFC when mmap=True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from indexes.atomic import atomic_dir
from indexes.dense_build import INDEX_TYPES
from indexes.faiss_setup import faiss

FORMAT_NAME = "patent-match/dense-index"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
IDS_FILE = "ids.json"
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "index.faiss"
_EXTRA_KEYS = ("requested_kind", "exact_below", "unused_params", "build_seconds", "faiss_version", "calibration")


def index_manifest(index_type: str, count: int, dim: int, params: dict[str, Any], metadata: dict[str, Any],
             extra: dict[str, Any]) -> dict[str, Any]:
    """The manifest of an index with these properties (``extra``: build facts kept in ``_EXTRA_KEYS``)."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": index_type,
        "metric": "inner_product",
        "normalized": True,
        "count": count,
        "dim": dim,
        "params": params,
        "metadata": metadata,
        "files": {"ids": IDS_FILE, "vectors": VECTORS_FILE, "faiss": FAISS_FILE},
        "vectors_dtype": "float16",
        **extra,
    }


def write_files(directory: str | os.PathLike[str], ids: list[str], vectors: np.ndarray, index: faiss.Index,
                manifest: dict[str, Any]) -> Path:
    """Write an index's files to ``directory`` atomically and return its path.

    Through ``indexes.atomic.atomic_dir``: a reader never sees a half-written index. Refuses to replace a
    non-empty directory that is not a dense index.
    """
    target = Path(directory).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if not target.is_dir():
            raise ValueError(f"{target} exists and is not a directory")
        if any(target.iterdir()) and not (target / MANIFEST).is_file():
            raise ValueError(f"refusing to replace {target}: non-empty and not a dense index")
    with atomic_dir(target) as tmp:
        with open(tmp / IDS_FILE, "w", encoding="utf-8") as f:
            json.dump(ids, f, ensure_ascii=False)
        np.save(tmp / VECTORS_FILE, np.asarray(vectors, dtype=np.float16), allow_pickle=False)
        faiss.write_index(index, str(tmp / FAISS_FILE))
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=2, sort_keys=True)
    return target


def read_files(directory: str | os.PathLike[str], mmap: bool = True) -> dict[str, Any]:
    """The parts of an index written by ``write_files``, as ``DenseIndex``'s constructor takes them.

    ``mmap=True`` memory-maps ``vectors.npy`` (read-only) and opens the faiss file with
    ``IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY``, so the vectors/codes are paged in on demand (HNSW's graph
    links are still read into memory). Raises ValueError on a missing/foreign manifest, a
    ``format_version`` this code does not read, or files inconsistent with the manifest.
    """
    root = Path(directory)
    path = root / MANIFEST
    if not path.is_file():
        raise ValueError(f"{root} is not a dense index: no {MANIFEST}")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a {FORMAT_NAME} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{root}: dense index format_version {version!r}, this code reads version {FORMAT_VERSION}: "
            "rebuild the index (or use the matching patent-match version)"
        )
    index_type = manifest.get("kind")
    if index_type not in INDEX_TYPES:
        raise ValueError(f"{path}: unknown index type {index_type!r}")
    with open(root / IDS_FILE, encoding="utf-8") as f:
        ids = json.load(f)
    vectors = np.load(root / VECTORS_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
    flags = (faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY) if mmap else 0
    index = faiss.read_index(str(root / FAISS_FILE), flags)
    n, dim = int(manifest["count"]), int(manifest["dim"])
    if (
        not isinstance(ids, list)
        or len(ids) != n
        or vectors.shape != (n, dim)
        or vectors.dtype != np.float16
        or index.ntotal != n
        or index.d != dim
    ):
        raise ValueError(
            f"{root}: files disagree with the manifest (count {n}, dim {dim}): {len(ids)} ids, vectors "
            f"{vectors.shape} {vectors.dtype}, faiss index {index.ntotal} x {index.d}"
        )
    extra = {key: manifest[key] for key in _EXTRA_KEYS if key in manifest}
    return {"ids": ids, "vectors": vectors, "index": index, "index_type": index_type,
            "params": dict(manifest["params"]), "manifest_extra": extra, "metadata": manifest.get("metadata", {})}
