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

import copy
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes.bm25 import top_k
from indexes.dense_segments import SegmentedDense
from indexes.embedders import Embedder, load_embedder
from indexes.translate import render_query
from indexes.vector_cache import VectorCache
from matcher.config import Mode, RankerConfig, load_config
from matcher.duplicates import DUPLICATE_WINDOW, collapse_duplicates
from matcher.features import FEATURES, Rendering, feature_matrix
from matcher.filter_report import FilterReport, report
from matcher.filters import DemandFilters, PatentFilters
from matcher.fusion import convex_fusion, rrf_fusion
from matcher.fusion.learned import LearnedRanker, model_path
from matcher.i18n import LocalisedError
from matcher.results import QueryExplainer, Result
from matcher.served import Snapshot
from matcher.store import Collection
from matcher.texts import dominant_language, query_languages
from matcher.workspace import Workspace


class NotIndexed(LocalisedError):
    """A search needs an index (or its dense part) that is missing or was built by another model version."""


class MinScoreError(LocalisedError, ValueError):
    """``min_score`` cannot apply: out of [0, 1], or the ranker has no calibrated relevance."""


@dataclass
class Candidates:
    """What the retrievers found for one query (positions -> scores), before fusion."""

    query: str
    languages: frozenset[str]
    terms: list[str] = field(default_factory=list)
    bm25: dict[int, float] = field(default_factory=dict)
    dense: dict[int, float] = field(default_factory=dict)
    abstain: set[int] = field(default_factory=set)  # positions BM25 cannot see (another language)
    bm25_scores: np.ndarray | None = None
    query_vector: np.ndarray | None = None
    embedder: Embedder | None = None
    pool_cosines: dict[int, float] | None = None
    query_language: str = ""
    renderings: dict[str, Rendering] = field(default_factory=dict)  # document language -> the query BM25 saw there
    title_vector: np.ndarray | None = None  # the query by the snapshot's title model (None: it has no titles)
    pool: np.ndarray | None = None  # the learned fusion's candidates (positions, ascending) and their features
    features: np.ndarray | None = None


class Searcher:
    """Searches over a workspace's current snapshots. ``mmap`` (default) memory-maps the indexes: instant to open,
    right for one-off commands; a long-running service reads them into memory (its ``index_in_memory`` setting)."""

    def __init__(self, workspace: Workspace, config: RankerConfig | None = None, mmap: bool = True,
                 ranker_model: Path | None = None) -> None:
        self.workspace = workspace
        self.mmap = mmap
        self.ranker_model = ranker_model  # the learned fusion's model file (None: ``model_path`` of the workspace)
        self.config = config or load_config(workspace.home)
        self.store = workspace.open_store()
        self._snapshots: dict[Collection, Snapshot] = {}
        self._lock = threading.Lock()
        self._vector_cache: VectorCache | None = None
        self._learned: LearnedRanker | None = None
        self._pinned: dict[Collection, Snapshot] = {}
        self._owner: Searcher = self  # a pinned view's owner holds the store and the vector cache

    def learned_ranker(self, titles: bool = True) -> LearnedRanker:
        """The learned fusion's model: the ``ranker_model`` given, else ``HOME/ranker_model.json`` if fitted there,
        else the shipped one; for features without the title channel (``titles`` false), its model fitted without
        it (``LearnedRanker.for_titles``)."""
        owner = self._owner
        with owner._lock:
            if owner._learned is None:
                owner._learned = LearnedRanker.load(owner.ranker_model or model_path(owner.workspace.home), FEATURES)
            return owner._learned.for_titles(titles)

    def close(self) -> None:
        if self._owner is not self:
            return  # a view: its owner closes what they share
        self.store.close()
        if self._vector_cache is not None:
            self._vector_cache.close()

    def pinned(self, kinds: Iterable[Collection]) -> Searcher:
        """A view of this searcher that answers every call from the snapshots of ``kinds`` current now, so that
        all searches of one request (a portfolio's patents, a shortlist's demands) see one index even if a new
        snapshot is published meanwhile. It shares the store, caches and model; closing it closes nothing."""
        return self.over({kind: self.snapshot(kind) for kind in kinds})

    def over(self, snapshots: dict[Collection, Snapshot]) -> Searcher:
        """A view of this searcher that answers from ``snapshots`` for their kinds (``pinned`` with given ones: a
        benchmark's copy of a snapshot without its title vectors, say); it shares what ``pinned`` shares."""
        view = copy.copy(self)
        view._pinned = {**self._pinned, **snapshots}
        view._owner = self._owner
        return view

    def vector_cache(self) -> VectorCache:
        """The workspace's vector cache, opened on first use (explanations embed record sentences through it)."""
        if self._owner is not self:
            return self._owner.vector_cache()  # opened once, by the owner, and closed with it
        with self._lock:
            if self._vector_cache is None:
                self._vector_cache = VectorCache(self.workspace.vector_cache_path)
            return self._vector_cache

    def snapshot(self, kind: Collection) -> Snapshot:
        """The current snapshot of ``kind`` (a newly published one is picked up on the next call), or the pinned one
        in a view made by ``pinned``."""
        if kind in self._pinned:
            return self._pinned[kind]
        path = self.workspace.current_snapshot(kind)
        if path is None:
            raise NotIndexed("search.no_index", kind=kind, home=str(self.workspace.home))
        with self._lock:
            snap = self._snapshots.get(kind)
            if snap is None or snap.path != path:
                snap = self._snapshots[kind] = Snapshot.open(kind, path, self.mmap)
            return snap

    def embedder(self, snap: Snapshot) -> Embedder:
        if snap.dense is None:
            raise NotIndexed("search.no_dense", kind=snap.kind, model=self.config.dense_model)
        meta = snap.dense.metadata
        embedder = load_embedder(str(meta["model"]))
        if embedder.fingerprint != meta["fingerprint"]:
            raise NotIndexed("search.dense_version", kind=snap.kind, model=str(meta["model"]))
        return embedder

    def title_embedder(self, snap: Snapshot) -> Embedder | None:
        """The model that embedded the snapshot's titles (None: it has none), checked against its fingerprint."""
        info = snap.manifest.titles
        if info is None or snap.titles is None:
            return None
        embedder = load_embedder(info.model)
        if embedder.fingerprint != info.fingerprint:
            raise NotIndexed("search.title_version", kind=snap.kind, model=info.model)
        return embedder

    # --- public searches ------------------------------------------------------------------------------
    def search_patents(self, query: str, k: int = 10, filters: PatentFilters | None = None, mode: Mode | None = None,
                       explain: bool = False, *, min_score: float | None = None, collapse: bool = True
                       ) -> list[Result]:
        snap = self.snapshot("patents")
        return self.search(snap, query, k, snap.facets.patent_mask(filters or PatentFilters()), mode, explain,
                           min_score=min_score, collapse=collapse)

    def search_demands(self, query: str, k: int = 10, filters: DemandFilters | None = None, mode: Mode | None = None,
                       explain: bool = False, *, min_score: float | None = None, collapse: bool = True
                       ) -> list[Result]:
        snap = self.snapshot("demands")
        return self.search(snap, query, k, snap.facets.demand_mask(filters or DemandFilters()), mode, explain,
                           min_score=min_score, collapse=collapse)

    def patent_filter_report(self, filters: PatentFilters | None, found: int, k: int) -> FilterReport:
        """Why a patent search with ``filters`` returned ``found`` of ``k``: see ``matcher.filter_report``."""
        return report(self.snapshot("patents").facets, filters or PatentFilters(), found, k)

    # --- the ranker -----------------------------------------------------------------------------------
    def candidates(self, snap: Snapshot, query: str, mask: np.ndarray, mode: Mode,
                   candidates: int) -> Candidates:
        """Run the retrievers ``mode`` needs, each to ``candidates`` results within ``mask``; the expensive half of
        a search."""
        c = Candidates(query=query, languages=query_languages(query))
        if mode in ("bm25", "hybrid"):
            c.terms = snap.bm25.query_terms(query)
            scores = np.where(mask, snap.bm25.scores_for_terms(c.terms), 0.0)
            c.bm25 = {int(p): float(scores[p]) for p in top_k(scores, candidates)}
            c.bm25_scores = scores
        if mode in ("dense", "hybrid"):
            c.embedder = self.embedder(snap)
            c.query_vector = c.embedder.encode_queries([query])[0]
            c.dense = self._dense_candidates(snap, c.query_vector, candidates, mask)
        c.abstain = {p for p in set(c.bm25) | set(c.dense) if str(snap.languages[p]) not in c.languages} \
            if mode == "hybrid" else set()
        if mode == "hybrid" and self.config.translate_queries and self.config.fusion == "learned":
            assert c.bm25_scores is not None
            c.query_language = dominant_language(query)
            c.renderings = self.renderings(snap, query, c.terms, c.bm25_scores, mask, candidates)
            title_embedder = self.title_embedder(snap)
            if title_embedder is not None:
                c.title_vector = title_embedder.encode_queries([query])[0]
        return c

    def renderings(self, snap: Snapshot, query: str, terms: list[str], scores: np.ndarray, mask: np.ndarray,
                    candidates: int) -> dict[str, Rendering]:
        """BM25 once per document language, with the query as that language should see it."""
        out: dict[str, Rendering] = {}
        for lang, lang_mask in snap.language_masks.items():
            allowed = mask & lang_mask
            if not allowed.any():
                continue
            docs = snap.bm25.holding_all() if self.config.cohesive_translation else None
            text, translated = (render_query(query, lang, snap.bm25.specificity, docs) if lang in ("zh", "en")
                                else (query, False))
            r_terms = snap.bm25.query_terms(text) if translated else terms
            r_scores = snap.bm25.scores_for_terms(r_terms) if translated else scores
            r_scores = np.where(allowed, r_scores, 0.0)
            out[lang] = Rendering(lang, text, translated, r_terms, r_scores,
                                  {int(p): float(r_scores[p]) for p in top_k(r_scores, candidates)})
        return out

    def learned_features(self, snap: Snapshot, c: Candidates) -> tuple[np.ndarray, np.ndarray]:
        """The learned fusion's candidate positions (every language's BM25 and dense lists) and their features."""
        if c.pool is not None and c.features is not None:
            return c.pool, c.features
        assert snap.dense is not None and c.query_vector is not None
        pool = np.array(sorted({p for r in c.renderings.values() for p in r.top} | set(c.dense)), dtype=np.int64)
        languages = np.asarray(snap.languages[pool], dtype=str) if pool.size else np.zeros(0, dtype=str)
        cosines = _cosines(snap.dense, c.query_vector, pool.tolist()).astype(np.float64)
        coverage = np.zeros(pool.size, dtype=np.float64)
        dense_lists: dict[str, dict[int, float]] = {}
        for p, s in c.dense.items():
            dense_lists.setdefault(str(snap.languages[p]), {})[p] = s
        for lang, r in c.renderings.items():
            rows = np.flatnonzero(languages == lang)
            if rows.size:
                coverage[rows] = snap.bm25.coverage(r.terms, pool[rows])
        title_cosines = None
        if snap.titles is not None and c.title_vector is not None:
            rows = np.asarray(snap.titles[pool], dtype=np.float32) if pool.size \
                else np.zeros((0, snap.titles.shape[1]), np.float32)
            title_cosines = (rows @ np.asarray(c.title_vector, dtype=np.float32)).astype(np.float64)
        c.pool = pool
        c.features = feature_matrix(pool, languages, c.query_language, c.renderings, dense_lists, cosines, coverage,
                                    title_cosines)
        return c.pool, c.features

    def fuse(self, snap: Snapshot, c: Candidates, mode: Mode, cfg: RankerConfig | None = None,
             model: LearnedRanker | None = None) -> dict[int, float]:
        """Position -> fused score for the candidates; cheap, so tuning can re-fuse without re-retrieving.

        The learned fusion's score is the model's margin (``model``, default the searcher's); its calibrated
        relevance is ``model.relevance_of_margin(score)``, in the same order."""
        cfg = cfg or self.config
        if mode == "bm25":
            return dict(c.bm25)
        if mode == "dense":
            return dict(c.dense)
        if cfg.fusion == "learned":
            if not c.renderings and not cfg.translate_queries:
                raise ValueError("the learned fusion needs per-language candidates (translate_queries: true)")
            pool, x = self.learned_features(snap, c)
            margins = (model or self.learned_ranker(c.title_vector is not None)).margin(x)
            return {int(p): float(m) for p, m in zip(pool.tolist(), margins.tolist(), strict=True)}

        def abstains(run: int, key: str) -> bool:
            return run == 0 and int(key) in c.abstain

        if cfg.fusion == "rrf":
            fused = rrf_fusion([_keyed(c.bm25), _keyed(c.dense)], k=cfg.rrf_k, abstains=abstains,
                               abstain_credit=cfg.abstain_credit)
        else:
            # Convex: every candidate gets its true score from each retriever that can see it, so a document
            # outside one retriever's top list is not scored as if that retriever had never looked.
            pool = sorted(set(c.bm25) | set(c.dense))
            assert c.bm25_scores is not None and c.query_vector is not None and snap.dense is not None
            if c.pool_cosines is None or set(c.pool_cosines) != set(pool):
                sims = _cosines(snap.dense, c.query_vector, pool)
                c.pool_cosines = {p: float(s) for p, s in zip(pool, sims, strict=True)}
            full_bm25 = {p: float(c.bm25_scores[p]) for p in pool if p not in c.abstain}
            w = cfg.convex_weight_bm25
            fused = convex_fusion([_keyed(full_bm25), _keyed(c.pool_cosines)], weights=[w, 1 - w],
                                  abstains=abstains, abstain_credit=cfg.abstain_credit)
        return {int(d): s for d, s in fused.items()}

    def search(self, snap: Snapshot, query: str, k: int, mask: np.ndarray, mode: Mode | None = None,
               explain: bool = False, exclude: set[str] | None = None, *, min_score: float | None = None,
               collapse: bool = True) -> list[Result]:
        """The ``k`` best records for ``query`` within ``mask``.

        ``min_score`` drops results whose calibrated ``relevance`` is below it (only the learned fusion has one);
        ``collapse`` folds near-duplicates (same normalised title and abstract, or cosine >= ``DUPLICATE_COSINE``)
        into the best-ranked of each group, listing the others under it."""
        if k <= 0:
            raise ValueError("k must be positive")
        mode = mode or self.config.mode
        learned = mode == "hybrid" and self.config.fusion == "learned"
        if min_score is not None:
            if not 0.0 <= min_score <= 1.0:
                raise MinScoreError("search.min_score_range")
            if not learned:
                raise MinScoreError("search.min_score_needs_learned")
        if exclude:
            mask = mask.copy()
            for doc_id in exclude:
                pos = snap.bm25.position(doc_id)
                if pos is not None:
                    mask[pos] = False
        c = self.candidates(snap, query, mask, mode, max(self.config.candidates, k))
        fused = self.fuse(snap, c, mode)
        ordered = sorted(fused.items(), key=lambda item: (-round(item[1], 12), item[0]))
        model = self.learned_ranker(c.title_vector is not None) if learned else None
        if model is not None and min_score is not None:
            keep = model.relevance_of_margin(np.array([m for _, m in ordered])) >= min_score if ordered else []
            ordered = [item for item, kept in zip(ordered, keep, strict=True) if kept]
        window = ordered[:k + DUPLICATE_WINDOW] if collapse else ordered[:k]
        ids = [snap.bm25.ids[p] for p, _ in window]
        records = self.store.get_many(snap.kind, ids)
        window = [(p, sc) for (p, sc), doc_id in zip(window, ids, strict=True) if doc_id in records]
        groups = collapse_duplicates(snap, window, records) if collapse else [(item, []) for item in window]
        bm25_ranks = {p: i for i, p in enumerate(c.bm25, 1)}
        dense_ranks = {p: i for i, p in enumerate(sorted(c.dense, key=lambda p: -c.dense[p]), 1)}
        rendered_ranks = {lang: {p: i for i, p in enumerate(r.top, 1)} for lang, r in c.renderings.items()}
        results: list[Result] = []
        explainer: QueryExplainer | None = None
        for (pos, score), duplicates in groups[:k]:
            doc_id = snap.bm25.ids[pos]
            record = records[doc_id]
            retrievers: dict[str, dict[str, Any]] = {}
            lang = str(snap.languages[pos])
            if learned and lang in c.renderings:
                r = c.renderings[lang]
                retrievers["bm25"] = {"rank": rendered_ranks[lang].get(pos), "score": round(float(r.scores[pos]), 4),
                                      "translated": r.translated, **({"query": r.text} if r.translated else {})}
            elif mode in ("bm25", "hybrid"):
                retrievers["bm25"] = ({"abstained": "document language differs from the query's"}
                                      if pos in c.abstain else
                                      {"rank": bm25_ranks.get(pos), "score": round(c.bm25.get(pos, 0.0), 4)})
            if mode in ("dense", "hybrid"):
                retrievers["dense"] = {"rank": dense_ranks.get(pos),
                                       "score": round(c.dense[pos], 4) if pos in c.dense else None}
            relevance: float | None = None
            if model is not None:
                relevance = float(model.relevance_of_margin(np.array([score]))[0])
                retrievers["fused"] = {"method": "learned", "score": round(relevance, 6), "margin": round(score, 6)}
                score = relevance
            elif mode == "hybrid":
                retrievers["fused"] = {"method": self.config.fusion, "score": round(score, 6)}
            result = Result(doc_id, len(results) + 1, float(score), record, retrievers, relevance=relevance,
                            duplicates=[snap.bm25.ids[p] for p in duplicates])
            if explain:
                explainer = explainer or self.explainer(snap, query, c)
                result.explanation = explainer(record)
            results.append(result)
        return results

    def _dense_candidates(self, snap: Snapshot, query_vector: np.ndarray, candidates: int,
                          mask: np.ndarray) -> dict[int, float]:
        assert snap.dense is not None
        masks = [mask]
        if self.config.dense_per_language:
            masks = [mask & lang_mask for lang_mask in snap.language_masks.values()]
        run: dict[int, float] = {}
        for m in masks:
            if not m.any():
                continue
            scores, positions = snap.dense.search_positions(query_vector[None, :], candidates,
                                                            allowed=None if m.all() else m)
            for s, p in zip(scores[0], positions[0], strict=True):
                if p >= 0:
                    run[int(p)] = float(s)
        return run

    def explainer(self, snap: Snapshot, query: str, candidates: Candidates | None = None) -> QueryExplainer:
        """Explanations for ``query``'s results in ``snap`` (see ``QueryExplainer``); ``candidates`` from the same
        query reuse its analysed terms and query vector."""
        c = candidates
        terms = c.terms if c is not None and c.terms else snap.bm25.query_terms(query)
        if c is not None and c.renderings:  # a translated rendering's terms are what matched the other language
            terms = list(dict.fromkeys([*terms, *(t for r in c.renderings.values() for t in r.terms)]))
        embedder = c.embedder if c is not None else None
        vector = c.query_vector if c is not None else None
        if embedder is None and snap.dense is not None:
            embedder = self.embedder(snap)
        if embedder is None:
            return QueryExplainer(snap, terms, None, None)
        if vector is None:
            vector = embedder.encode_queries([query])[0]
        model, cache = embedder, self.vector_cache()
        # sentence vectors go through the vector cache: a patent explained for many demands (shortlists, pushes,
        # result pages, later runs) is embedded once
        return QueryExplainer(snap, terms, vector,
                              lambda texts: cache.embed(model.fingerprint, texts, model.encode_documents))


def _keyed(run: dict[int, float]) -> dict[str, float]:
    # the fusion functions take string ids; positions are zero-padded so string order = position order for ties
    return {f"{p:012d}": s for p, s in run.items()}


def _cosines(dense: SegmentedDense, query_vector: np.ndarray, positions: list[int]) -> np.ndarray:
    if not positions:
        return np.zeros(0, dtype=np.float32)
    vectors = np.asarray(dense.vectors[np.asarray(positions)], dtype=np.float32)
    return vectors @ np.asarray(query_vector, dtype=np.float32)
