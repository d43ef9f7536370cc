"""A ranker learned from labels: a linear model over per-candidate features (``matcher.features``) and a
calibration that turns its margin into a relevance estimate in [0, 1].

``margin = ((x - mean) / scale) . weights + bias`` ranks the candidates; ``relevance = sigmoid(a * margin + b)``
(``a > 0``, so the order is the margin's) estimates the probability that a candidate is relevant, fitted on
held-out margins of the dev splits (``eval.tune``). Saved as plain JSON with a format version
(``matcher/ranker_model.json`` ships; ``HOME/ranker_model.json`` overrides), loaded without pickle; a file of
another format version, or one naming a feature this build does not compute, is refused. A model may use a
subset of the build's features (an older fit): loaded for the build's columns, it reads its own by name.

A model that uses the title channel (``matcher.features.TITLE_CHANNEL``) carries a second model fitted on the same
queries without it (``without_titles``), for a snapshot that has no title vectors (built with ``title_model: null``,
or before titles were embedded): that snapshot's title columns are zeros, which the first model never saw in
fitting (with them its ranking and its relevance estimates are wrong). ``for_titles`` picks the one that fits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matcher.features import TITLE_CHANNEL

FORMAT = "patent-match/learned-ranker"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "ranker_model.json"


class RankerFileError(ValueError):
    pass


@dataclass(frozen=True)
class LearnedRanker:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    calibration: tuple[float, float] = (1.0, 0.0)  # (a, b): relevance = sigmoid(a * margin + b), a > 0
    info: dict[str, Any] = field(default_factory=dict)  # how it was fitted (sets, counts, scores): not used to rank
    columns: tuple[int, ...] | None = None  # where its features sit in the matrices it is given (None: in order)
    without_titles: LearnedRanker | None = None  # fitted without the title channel, for snapshots without titles

    def __post_init__(self) -> None:
        k = len(self.features)
        for name in ("mean", "scale", "weights"):
            if np.asarray(getattr(self, name)).shape != (k,):
                raise RankerFileError(f"{name} must have one value per feature ({k})")
        if np.any(np.asarray(self.scale) <= 0):
            raise RankerFileError("scale must be positive")
        if not self.calibration[0] > 0:
            raise RankerFileError("the calibration slope must be positive (relevance must follow the margin)")
        if self.without_titles is not None and set(self.without_titles.features) & set(TITLE_CHANNEL):
            raise RankerFileError("without_titles: uses the title channel it stands in for")

    @property
    def uses_titles(self) -> bool:
        return bool(set(self.features) & set(TITLE_CHANNEL))

    def for_titles(self, titles: bool) -> LearnedRanker:
        """The model for a search with (``titles``) or without title vectors: this one, or ``without_titles`` when
        there are none and this one reads them (a file without that model: this one, on zero title columns)."""
        if titles or not self.uses_titles or self.without_titles is None:
            return self
        return self.without_titles

    def margin(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.columns is not None:
            x = x[:, list(self.columns)]
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def relevance_of_margin(self, margin: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(-(a * np.asarray(margin, dtype=np.float64) + b)))

    def relevance(self, x: np.ndarray) -> np.ndarray:
        return self.relevance_of_margin(self.margin(x))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": "linear",
                "features": list(self.features), "mean": [float(v) for v in self.mean],
                "scale": [float(v) for v in self.scale], "weights": [float(v) for v in self.weights],
                "bias": float(self.bias), "calibration": {"a": float(self.calibration[0]),
                                                          "b": float(self.calibration[1])},
                "info": self.info,
                **({"without_titles": self.without_titles.to_dict()} if self.without_titles is not None else {})}

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], expected_features: tuple[str, ...] | None = None,
                  source: str = "ranker model") -> LearnedRanker:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise RankerFileError(f"{source}: format {data.get('format')!r} v{data.get('format_version')} is not "
                                  f"readable by this build ({FORMAT} v{FORMAT_VERSION}); refit with "
                                  "`pmatch eval tune`")
        features = tuple(data.get("features", ()))
        columns = None
        if expected_features is not None:
            unknown = [f for f in features if f not in expected_features]
            if unknown:
                raise RankerFileError(f"{source}: fitted for features {unknown} that this build does not compute "
                                      f"({list(expected_features)}); refit with `pmatch eval tune`")
            if features != tuple(expected_features):
                columns = tuple(tuple(expected_features).index(f) for f in features)
        fallback = data.get("without_titles")
        if fallback is not None and not isinstance(fallback, dict):
            raise RankerFileError(f"{source}: without_titles: must be a model object")
        without_titles = None if fallback is None else cls.from_dict(fallback, expected_features,
                                                                     f"{source}: without_titles")
        try:
            cal = data.get("calibration", {"a": 1.0, "b": 0.0})
            return cls(features, np.asarray(data["mean"], dtype=np.float64),
                       np.asarray(data["scale"], dtype=np.float64), np.asarray(data["weights"], dtype=np.float64),
                       float(data["bias"]), (float(cal["a"]), float(cal["b"])), dict(data.get("info", {})),
                       columns, without_titles)
        except (KeyError, TypeError) as exc:
            raise RankerFileError(f"{source}: missing or malformed field: {exc}") from None
        except RankerFileError as exc:
            raise RankerFileError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: Path, expected_features: tuple[str, ...] | None = None) -> LearnedRanker:
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise RankerFileError(f"{path}: no learned ranker model (fit one with `pmatch eval tune`)") from None
        except json.JSONDecodeError as exc:
            raise RankerFileError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
        return cls.from_dict(data, expected_features, str(path))


def model_path(home: Path | None = None) -> Path:
    """``HOME/ranker_model.json`` if there is one (written by `pmatch eval tune`), else the shipped model."""
    if home is not None and (home / "ranker_model.json").is_file():
        return home / "ranker_model.json"
    return DEFAULT_PATH
