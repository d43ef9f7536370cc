"""Searching the served snapshot: free text -> patents or demands, by BM25, dense, or both fused.

``Searcher`` opens the workspace's current snapshots (and re-opens when a newer one is published), turns
filters into a mask that restricts every retriever exactly, runs the retrievers to ``candidates`` depth,
fuses, and joins the hits with their stored records.

Cross-language matching: BM25 can only match a document that shares the query's words, so for a document
in a language the query is not written in, BM25 *abstains* (see ``matcher.fusion``) rather than counting as
a zero; the document is then ranked on dense evidence alone, at full weight. Dense candidates are fetched per
document language (``dense_per_language``) so that a model that prefers same-language documents cannot crowd
the other language out of the candidate pool.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes.bm25 import BM25Index, top_k
from indexes.dense import DenseIndex
from indexes.embedders import Embedder, load_embedder
from matcher.config import Mode, RankerConfig, load_config
from matcher.explain import closest_sentence, matched_terms
from matcher.filters import DemandFilters, FacetIndex, PatentFilters
from matcher.fusion import convex_fusion, rrf_fusion
from matcher.records import Demand, Patent
from matcher.store import Kind
from matcher.workspace import Workspace

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")


class NotIndexed(Exception):
    pass


def query_languages(text: str) -> frozenset[str]:
    """The languages BM25 can match for this query: zh if it has Chinese, en if it has Latin words."""
    langs = set()
    if _CJK.search(text):
        langs.add("zh")
    if _LATIN.search(text):
        langs.add("en")
    return frozenset(langs) if langs else frozenset({"zh", "en"})


@dataclass
class Snapshot:
    """One published, immutable set of indexes for one kind."""

    kind: Kind
    path: Path
    manifest: dict[str, Any]
    bm25: BM25Index
    facets: FacetIndex
    dense: DenseIndex | None
    languages: np.ndarray  # language label per position

    @classmethod
    def open(cls, kind: Kind, path: Path) -> Snapshot:
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        dense_info = manifest["components"].get("dense")
        dense = DenseIndex.load(path / dense_info["dir"]) if dense_info else None
        facets = FacetIndex.load(path / "facets")
        vocab = np.array(facets.vocabs["language"] + ["?"], dtype=object)
        return cls(kind, path, manifest, BM25Index.load(path / "bm25"), facets, dense, vocab[facets.arrays["language"]])


@dataclass
class Result:
    id: str
    rank: int
    score: float
    record: Patent | Demand
    retrievers: dict[str, dict[str, Any]] = field(default_factory=dict)
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"rank": self.rank, "id": self.id, "score": self.score, "language": self.record.language,
               "retrievers": self.retrievers, "record": self.record.model_dump(mode="json")}
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


class Searcher:
    def __init__(self, workspace: Workspace, config: RankerConfig | None = None) -> None:
        self.workspace = workspace
        self.config = config or load_config(workspace.home)
        self.store = workspace.open_store()
        self._snapshots: dict[Kind, Snapshot] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()

    def snapshot(self, kind: Kind) -> Snapshot:
        """The current snapshot of ``kind``; a newly published one is picked up on the next call."""
        path = self.workspace.current_snapshot(kind)
        if path is None:
            raise NotIndexed(f"no {kind} index in {self.workspace.home}: run `pmatch index build`")
        with self._lock:
            snap = self._snapshots.get(kind)
            if snap is None or snap.path != path:
                snap = self._snapshots[kind] = Snapshot.open(kind, path)
            return snap

    def embedder(self, snap: Snapshot) -> Embedder:
        if snap.dense is None:
            raise NotIndexed(f"the {snap.kind} index has no dense part: run `pmatch index build --dense-model "
                             f"{self.config.dense_model}` (or search with --mode bm25)")
        meta = snap.dense.metadata
        embedder = load_embedder(str(meta["model"]))
        if embedder.fingerprint != meta["fingerprint"]:
            raise NotIndexed(f"the {snap.kind} dense index was built with a different version of {meta['model']}: "
                             "rebuild it with `pmatch index build`")
        return embedder

    # --- public searches ------------------------------------------------------------------------------
    def search_patents(self, query: str, k: int = 10, filters: PatentFilters | None = None, mode: Mode | None = None,
                       explain: bool = False) -> list[Result]:
        snap = self.snapshot("patents")
        return self.search(snap, query, k, snap.facets.patent_mask(filters or PatentFilters()), mode, explain)

    def search_demands(self, query: str, k: int = 10, filters: DemandFilters | None = None, mode: Mode | None = None,
                       explain: bool = False) -> list[Result]:
        snap = self.snapshot("demands")
        return self.search(snap, query, k, snap.facets.demand_mask(filters or DemandFilters()), mode, explain)

    # --- the ranker -----------------------------------------------------------------------------------
    def search(self, snap: Snapshot, query: str, k: int, mask: np.ndarray, mode: Mode | None = None,
               explain: bool = False, exclude: set[str] | None = None) -> list[Result]:
        if k <= 0:
            raise ValueError("k must be positive")
        cfg = self.config
        mode = mode or cfg.mode
        if exclude:
            mask = mask.copy()
            for doc_id in exclude:
                pos = snap.bm25.position(doc_id)
                if pos is not None:
                    mask[pos] = False
        depth = max(cfg.candidates, k)
        qlangs = query_languages(query)
        terms: list[str] = []
        bm25_run: dict[int, float] = {}
        dense_run: dict[int, float] = {}
        bm25_scores: np.ndarray | None = None
        query_vector: np.ndarray | None = None
        embedder: Embedder | None = None
        if mode in ("bm25", "hybrid"):
            terms = snap.bm25.query_terms(query)
            bm25_scores = np.where(mask, snap.bm25.scores_for_terms(terms), 0.0)
            bm25_run = {int(p): float(bm25_scores[p]) for p in top_k(bm25_scores, depth)}
        if mode in ("dense", "hybrid"):
            embedder = self.embedder(snap)
            assert snap.dense is not None
            query_vector = embedder.encode_queries([query])[0]
            dense_run = self._dense_candidates(snap, query_vector, depth, mask)

        def abstains(run: int, pos: int) -> bool:
            return run == 0 and str(snap.languages[pos]) not in qlangs

        if mode == "bm25":
            fused = {p: s for p, s in bm25_run.items()}
        elif mode == "dense":
            fused = dict(dense_run)
        elif cfg.fusion == "rrf":
            fused_ids = rrf_fusion([_keyed(bm25_run), _keyed(dense_run)], k=cfg.rrf_k,
                                   abstains=lambda r, d: abstains(r, int(d)))
            fused = {int(d): s for d, s in fused_ids.items()}
        else:
            # Convex: every candidate gets its true score from each retriever that can see it, so a document
            # outside one retriever's top list is not scored as if that retriever had never looked.
            pool = sorted(set(bm25_run) | set(dense_run))
            assert bm25_scores is not None and query_vector is not None and snap.dense is not None
            full_bm25 = {p: float(bm25_scores[p]) for p in pool if not abstains(0, p)}
            sims = _cosines(snap.dense, query_vector, pool)
            full_dense = {p: float(s) for p, s in zip(pool, sims, strict=True)}
            w = cfg.convex_weight_bm25
            fused_ids = convex_fusion([_keyed(full_bm25), _keyed(full_dense)], weights=[w, 1 - w],
                                      abstains=lambda r, d: abstains(r, int(d)))
            fused = {int(d): s for d, s in fused_ids.items()}
        ranked = sorted(fused.items(), key=lambda item: (-round(item[1], 12), item[0]))[:k]
        ids = [snap.bm25.ids[p] for p, _ in ranked]
        records = self.store.get_many(snap.kind, ids)
        bm25_ranks = {p: i for i, p in enumerate(bm25_run, 1)}
        dense_ranks = {p: i for i, p in enumerate(sorted(dense_run, key=lambda p: -dense_run[p]), 1)}
        results: list[Result] = []
        for (pos, score), doc_id in zip(ranked, ids, strict=True):
            record = records.get(doc_id)
            if record is None:  # deleted from the store after this snapshot was built
                continue
            retrievers: dict[str, dict[str, Any]] = {}
            if mode in ("bm25", "hybrid"):
                retrievers["bm25"] = ({"abstained": "document language differs from the query's"}
                                      if mode == "hybrid" and abstains(0, pos) else
                                      {"rank": bm25_ranks.get(pos), "score": round(bm25_run.get(pos, 0.0), 4)})
            if mode in ("dense", "hybrid"):
                retrievers["dense"] = {"rank": dense_ranks.get(pos),
                                       "score": round(dense_run[pos], 4) if pos in dense_run else None}
            if mode == "hybrid":
                retrievers["fused"] = {"method": cfg.fusion, "score": round(score, 6)}
            result = Result(doc_id, len(results) + 1, float(score), record, retrievers)
            if explain:
                result.explanation = self._explain(snap, terms or snap.bm25.query_terms(query), record, embedder,
                                                   query_vector, query)
            results.append(result)
        return results

    def _dense_candidates(self, snap: Snapshot, query_vector: np.ndarray, depth: int,
                          mask: np.ndarray) -> dict[int, float]:
        assert snap.dense is not None
        masks = [mask]
        if self.config.dense_per_language:
            masks = [mask & (snap.languages == lang) for lang in np.unique(snap.languages)]
        run: dict[int, float] = {}
        for m in masks:
            if not m.any():
                continue
            scores, positions = snap.dense.search_positions(query_vector[None, :], depth,
                                                            allowed=None if m.all() else m)
            for s, p in zip(scores[0], positions[0], strict=True):
                if p >= 0:
                    run[int(p)] = float(s)
        return run

    def _explain(self, snap: Snapshot, terms: list[str], record: Patent | Demand, embedder: Embedder | None,
                 query_vector: np.ndarray | None, query: str) -> dict[str, Any]:
        out = matched_terms(snap.bm25.analyzer, terms, record)
        if embedder is None and snap.dense is not None:
            embedder = self.embedder(snap)
            query_vector = embedder.encode_queries([query])[0]
        if embedder is not None and query_vector is not None:
            out["closest_sentence"] = closest_sentence(query_vector, record, embedder)
        out["language"] = record.language
        return out


def _keyed(run: dict[int, float]) -> dict[str, float]:
    # the fusion functions take string ids; positions are zero-padded so string order = position order for ties
    return {f"{p:012d}": s for p, s in run.items()}


def _cosines(dense: DenseIndex, query_vector: np.ndarray, positions: list[int]) -> np.ndarray:
    if not positions:
        return np.zeros(0, dtype=np.float32)
    vectors = np.asarray(dense.vectors[np.asarray(positions)], dtype=np.float32)
    return vectors @ np.asarray(query_vector, dtype=np.float32)
