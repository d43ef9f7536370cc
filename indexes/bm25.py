"""BM25 keyword index over ids + text, built on bm25s, saved as plain files and loaded memory-mapped.

Scoring is BM25+ (Lv & Zhai, 2011: the term-frequency part is lower-bounded by ``delta``), with rank-bm25's
``BM25Plus`` defaults (k1 = 1.5, b = 0.75, delta = 1). Two reasons: patents range from a 20-character title
to 10,000 characters of claims, and BM25+ stops long documents from being pushed below short ones that
match fewer terms; and rank-bm25 implements the same formula exactly, so the reference check (same top-10,
same scores) is exact rather than "close". BM25+ gives every document ``delta * idf`` for each query term
it lacks; that part is the same constant for every document, so ranking ignores it, and ``search`` reports
only the part earned by matching terms: a document with no query term scores 0 and is never returned.

On disk (a folder): bm25s's own ``.npy`` arrays and ``vocab.index.json`` / ``params.index.json``, plus
``ids.json`` (position -> id) and ``manifest.json`` (format version, analyzer settings, parameters, document
count, build time). ``load(dir, mmap=True)`` memory-maps the score matrix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from indexes.analyzer import AnalyzerConfig, get_analyzer

FORMAT_VERSION = 1
DEFAULT_PARAMS: dict[str, Any] = {"method": "bm25+", "k1": 1.5, "b": 0.75, "delta": 1.0, "dtype": "float32"}


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    position: int


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest positive scores, best first; ties broken by position (stable).

    Scores are compared at 1e-6 so that equal scores which differ only by float rounding (BM25+'s constant is
    subtracted) are treated as the ties they are.
    """
    candidates = np.flatnonzero(scores > 0)
    keys = np.round(scores[candidates], 6)
    if candidates.size > k:
        threshold = np.partition(keys, candidates.size - k)[candidates.size - k]
        keep = keys >= threshold  # every document tied with the k-th stays in the running
        candidates, keys = candidates[keep], keys[keep]
    order = np.lexsort((candidates, -keys))
    return candidates[order][:k]


class BM25Index:
    """A BM25+ index: ``build`` from ids and texts, ``search`` with a query string, ``save`` / ``load``."""

    def __init__(self, retriever: bm25s.BM25, ids: list[str], manifest: dict[str, Any]) -> None:
        self._retriever = retriever
        self.ids = ids
        self.manifest = manifest
        self.analyzer_config = AnalyzerConfig.from_dict(manifest["analyzer"])
        self.analyzer = get_analyzer(self.analyzer_config)
        self._position = {doc_id: i for i, doc_id in enumerate(ids)}
        nonocc = retriever.nonoccurrence_array
        self._nonoccurrence = None if nonocc is None else np.asarray(nonocc, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        texts: Sequence[str],
        analyzer: AnalyzerConfig | None = None,
        params: dict[str, Any] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> BM25Index:
        """Tokenize ``texts`` with the analyzer and index them under ``ids`` (unique, same length)."""
        config = analyzer or AnalyzerConfig()
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        tokens = get_analyzer(config).tokenize_many(texts, progress=progress)
        return cls.build_from_tokens(ids, tokens, config, params)

    @classmethod
    def build_from_tokens(
        cls,
        ids: Sequence[str],
        tokens: Sequence[list[str]],
        analyzer: AnalyzerConfig | None = None,
        params: dict[str, Any] | None = None,
    ) -> BM25Index:
        """Index already-tokenized documents (the tokens must come from ``analyzer``)."""
        config = analyzer or AnalyzerConfig()
        p = {**DEFAULT_PARAMS, **(params or {})}
        unknown = set(p) - set(DEFAULT_PARAMS)
        if unknown:
            raise ValueError(f"unknown BM25 parameters: {sorted(unknown)}")
        ids = list(ids)
        if len(ids) != len(tokens):
            raise ValueError(f"{len(ids)} ids but {len(tokens)} token lists")
        if not ids:
            raise ValueError("cannot build a BM25 index over no documents")
        if len(set(ids)) != len(ids):
            raise ValueError("document ids must be unique")
        started = time.time()
        retriever = bm25s.BM25(method=p["method"], k1=p["k1"], b=p["b"], delta=p["delta"], dtype=p["dtype"])
        # bm25s needs at least one token per document to size the matrix; an empty document simply never matches.
        retriever.index([list(t) for t in tokens], show_progress=False)
        manifest = {
            "format": "patent-match/bm25",
            "format_version": FORMAT_VERSION,
            "analyzer": config.to_dict(),
            "params": p,
            "doc_count": len(ids),
            "vocab_size": len(retriever.vocab_dict),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.time() - started, 3),
            "bm25s_version": bm25s.__version__,
        }
        return cls(retriever, ids, manifest)

    # --- querying -------------------------------------------------------------------------------------
    def query_terms(self, query: str) -> list[str]:
        """The query's terms that exist in this index's vocabulary (others cannot match)."""
        vocab = self._retriever.vocab_dict
        return [t for t in self.analyzer.tokenize(query) if t in vocab and t != ""]

    def scores_for_terms(self, terms: Sequence[str]) -> np.ndarray:
        """The score every document earns from matching ``terms`` (0 where it matches none)."""
        if not terms:
            return np.zeros(len(self.ids), dtype=np.float64)
        token_ids = [self._retriever.vocab_dict[t] for t in terms]
        scores = np.asarray(self._retriever.get_scores_from_ids(token_ids), dtype=np.float64)
        if self._nonoccurrence is not None:
            scores -= self._nonoccurrence[token_ids].sum()
            scores[np.abs(scores) < 1e-9] = 0.0
        return scores

    def full_scores(self, terms: Sequence[str]) -> np.ndarray:
        """The textbook BM25+ score, including the constant every document gets (for reference checks)."""
        if not terms:
            return np.zeros(len(self.ids), dtype=np.float64)
        token_ids = [self._retriever.vocab_dict[t] for t in terms]
        return np.asarray(self._retriever.get_scores_from_ids(token_ids), dtype=np.float64)

    def search(self, query: str, k: int = 10, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query``; ``allowed`` is an optional boolean mask over positions."""
        return self.search_terms(self.query_terms(query), k, allowed)

    def search_terms(self, terms: Sequence[str], k: int = 10, allowed: np.ndarray | None = None) -> list[Hit]:
        if k <= 0:
            raise ValueError("k must be positive")
        scores = self.scores_for_terms(terms)
        if allowed is not None:
            if allowed.shape != scores.shape or allowed.dtype != np.bool_:
                raise ValueError(f"allowed must be a boolean mask of length {len(self.ids)}")
            scores = np.where(allowed, scores, 0.0)
        return [Hit(self.ids[p], float(scores[p]), int(p)) for p in top_k(scores, k)]

    def idf(self, term: str) -> float:
        """BM25+'s idf of ``term``, log((N + 1) / df): how informative a shared term is (0 if unknown)."""
        token = self._retriever.vocab_dict.get(term)
        if token is None:
            return 0.0
        indptr = self._retriever.scores["indptr"]
        df = int(indptr[token + 1] - indptr[token])
        return float(np.log((len(self.ids) + 1) / df)) if df else 0.0

    def position(self, doc_id: str) -> int | None:
        return self._position.get(doc_id)

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the index to ``directory`` atomically: a reader sees the old folder or the new one."""
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            self._retriever.save(str(tmp))
            (tmp / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
            (tmp / "manifest.json").write_text(json.dumps(self.manifest, ensure_ascii=False, indent=2), "utf-8")
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> BM25Index:
        path = Path(directory)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no BM25 index at {path} (manifest.json missing)")
        manifest = json.loads(manifest_path.read_text("utf-8"))
        if manifest.get("format") != "patent-match/bm25" or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{manifest_path}: BM25 index format {manifest.get('format')!r} v{manifest.get('format_version')} "
                f"is not readable by this build (v{FORMAT_VERSION}); rebuild with `pmatch index build`"
            )
        retriever = bm25s.BM25.load(str(path), mmap=mmap, load_corpus=False)
        ids = json.loads((path / "ids.json").read_text("utf-8"))
        if len(ids) != manifest["doc_count"]:
            raise ValueError(f"{path}: ids.json has {len(ids)} ids, manifest says {manifest['doc_count']}")
        return cls(retriever, ids, manifest)


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an existing ``target`` is moved aside first and removed after."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
