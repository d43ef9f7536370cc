"""A persistent cache of text embeddings keyed by (model fingerprint, text hash), in one SQLite file.

Embedding is the slow part of dense retrieval (tens of documents a second on two cores), so every vector
computed is kept: a rebuilt index, a second evaluation run over the same corpus, or a re-ingested record
with unchanged text reuses it. Vectors are stored as float16. Precomputed vectors can be shipped as an
``.npz`` file (``export_npz`` / ``import_npz``) tagged with the model fingerprint; they are only ever used
for the exact model that made them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

NPZ_FORMAT = "patent-match/vectors"
NPZ_VERSION = 1


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class VectorCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (fingerprint TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL,"
            " vector BLOB NOT NULL, PRIMARY KEY (fingerprint, hash))"
        )
        self._db.commit()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, fingerprint: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors WHERE fingerprint=?", (fingerprint,)).fetchone()[0])

    def get_many(self, fingerprint: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                rows = self._db.execute(
                    f"SELECT hash, vector FROM vectors WHERE fingerprint=? AND hash IN ({marks})", (fingerprint, *chunk)
                )
                for h, blob in rows:
                    found[h] = np.frombuffer(blob, dtype=np.float16)
        return found

    def put_many(self, fingerprint: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        if len(hashes) != len(vectors):
            raise ValueError(f"{len(hashes)} hashes but {len(vectors)} vectors")
        rows = [(fingerprint, h, int(v.shape[0]), np.asarray(v, dtype=np.float16).tobytes())
                for h, v in zip(hashes, vectors, strict=True)]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?,?)", rows)
            self._db.commit()

    def embed(
        self,
        fingerprint: str,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        progress: Callable[[int, int], None] | None = None,
        chunk: int = 256,
    ) -> np.ndarray:
        """Vectors for ``texts`` (float32, rows in order): cached ones read, missing ones encoded and stored.

        ``encode`` turns a list of texts into a float array; it is called in chunks so the cache fills as it
        goes (an interrupted run keeps what it computed). ``progress(done, total)`` counts texts encoded.
        """
        hashes = [text_hash(t) for t in texts]
        have = self.get_many(fingerprint, hashes)
        missing: dict[str, str] = {}
        for h, t in zip(hashes, texts, strict=True):
            if h not in have and h not in missing:
                missing[h] = t
        todo = list(missing.items())
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            vectors = np.asarray(encode([t for _, t in part]), dtype=np.float32)
            self.put_many(fingerprint, [h for h, _ in part], vectors)
            for (h, _), v in zip(part, vectors, strict=True):
                have[h] = v.astype(np.float16)
            if progress:
                progress(min(start + chunk, len(todo)), len(todo))
        if not hashes:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([have[h] for h in hashes]).astype(np.float32)

    def export_npz(self, fingerprint: str, hashes: Sequence[str], path: str | Path, meta: dict[str, object]) -> int:
        """Write the cached vectors of ``hashes`` (those present) to a compressed ``.npz`` for shipping."""
        have = self.get_many(fingerprint, hashes)
        keys = [h for h in dict.fromkeys(hashes) if h in have]
        vectors = np.stack([have[h] for h in keys]) if keys else np.zeros((0, 0), dtype=np.float16)
        header = {"format": NPZ_FORMAT, "format_version": NPZ_VERSION, "fingerprint": fingerprint, **meta}
        np.savez_compressed(Path(path), hashes=np.array(keys, dtype="S40"), vectors=vectors,
                            meta=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        return len(keys)

    def import_npz(self, path: str | Path, fingerprint: str) -> int:
        """Load shipped vectors if they were made by the model with ``fingerprint``; returns how many (0 if not)."""
        with np.load(Path(path)) as data:
            header = json.loads(bytes(data["meta"]).decode())
            if header.get("format") != NPZ_FORMAT or header.get("format_version") != NPZ_VERSION:
                raise ValueError(f"{path}: not a patent-match vectors file of version {NPZ_VERSION}")
            if header["fingerprint"] != fingerprint:
                return 0
            hashes = [h.decode() for h in data["hashes"]]
            self.put_many(fingerprint, hashes, data["vectors"])
        return len(hashes)


def npz_header(path: str | Path) -> dict[str, object]:
    with np.load(Path(path)) as data:
        return dict(json.loads(bytes(data["meta"]).decode()))
