"""Running an evaluation set through the real ranker: a temporary workspace over the set's corpus, built by
the same code that builds the served indexes, searched by the same ``Searcher`` that serves ``pmatch search``.

A query's run is its results as a user sees them: each result, then the near-duplicates folded under it
(``Result.duplicates``, listed under it in the CLI, the page and the API), so a target folded under a twin is found
where it is shown, and the results after a folded group move down (``shown_run``).

Document vectors come through the shared vector cache (keyed by model and text hash), so a second run over
the same corpus does not re-embed. Workspaces are reused within one process for the same corpus and model.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.beir import Dataset, DatasetError, detect_language
from indexes.analyzer import get_analyzer
from matcher.config import RankerConfig, load_config
from matcher.filters import PatentFilters
from matcher.full_build import build_snapshot
from matcher.fusion.learned import model_path
from matcher.records import Patent
from matcher.results import Result
from matcher.search import Searcher
from matcher.store import Store
from matcher.texts import indexed_text
from matcher.workspace import Workspace

Run = dict[str, dict[str, float]]  # query id -> doc id -> score
Progress = Callable[[str, int, int], None]
DEPTH = 100
_PATENT_FIELDS = set(Patent.model_fields) - {"id", "title", "abstract", "keywords"}


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate. ``None`` fields take the served ranker config's values."""

    mode: str | None = None  # bm25 | bm25-translated | dense | hybrid | rank-bm25
    model: str | None = None
    fusion: str | None = None  # rrf | convex
    weight: float | None = None  # convex fusion: BM25's weight
    rrf_k: int | None = None
    candidates: int | None = None
    per_language: bool | None = None  # fetch dense candidates per document language

    def ranker(self, base: RankerConfig) -> RankerConfig:
        updates: dict[str, Any] = {}
        if self.mode == "bm25-translated":
            updates["mode"] = "bm25"
        elif self.mode and self.mode != "rank-bm25":
            updates["mode"] = self.mode
        if self.model:
            updates["dense_model"] = self.model
        if self.fusion:
            updates["fusion"] = self.fusion
        if self.weight is not None:
            updates["convex_weight_bm25"] = self.weight
        if self.rrf_k is not None:
            updates["rrf_k"] = self.rrf_k
        if self.candidates is not None:
            updates["candidates"] = self.candidates
        if self.per_language is not None:
            updates["dense_per_language"] = self.per_language
        return RankerConfig.model_validate({**base.model_dump(), **updates})

    def label(self, base: RankerConfig) -> str:
        cfg = self.ranker(base)
        if self.mode == "rank-bm25":
            return "bm25 (rank-bm25)"
        if self.mode == "bm25-translated":
            return "bm25 translated (per language, RRF k=60 of the language lists)"
        if cfg.mode == "bm25":
            return "bm25"
        if cfg.mode == "dense":
            return f"dense {cfg.dense_model}" + ("" if cfg.dense_per_language else " (one global pool)")
        if cfg.fusion == "learned":
            return f"hybrid learned {cfg.dense_model} (per-language BM25 with translation + dense)"
        detail = f"k={cfg.rrf_k}" if cfg.fusion == "rrf" else f"w_bm25={cfg.convex_weight_bm25:g}"
        pooled = "" if cfg.dense_per_language else ", one global dense pool"
        return f"hybrid {cfg.fusion} {cfg.dense_model} ({detail}{pooled})"


def corpus_records(dataset: Dataset) -> list[Patent]:
    records = []
    for line, doc in enumerate(dataset.corpus, 1):
        fields = {k: v for k, v in doc.items() if k in _PATENT_FIELDS}
        fields.setdefault("language", detect_language(f"{doc['title']} {doc['text']}"))
        try:
            records.append(Patent.model_validate({"id": doc["_id"], "title": doc["title"], "abstract": doc["text"],
                                                  **fields}))
        except ValueError as exc:
            raise DatasetError(f"{dataset.path}: corpus document {line} ({doc['_id']!r}): {exc}") from None
    return records


class Workspaces:
    """Temporary workspaces over evaluation corpora, one per (corpus, dense model), built on first use."""

    def __init__(self, root: Path | None = None) -> None:
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="pmatch-eval-")
        self.root = Path(root) if root else Path(self._tmp.name)  # type: ignore[union-attr]
        self._built: dict[tuple[str, str | None], Workspace] = {}
        self._records: dict[str, list[Patent]] = {}

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def _key(self, dataset: Dataset) -> str:
        h = hashlib.sha1()
        for doc in dataset.corpus:
            h.update(doc["_id"].encode())
            h.update(doc["title"].encode())
            h.update(doc["text"].encode())
        return h.hexdigest()[:16]

    def records(self, dataset: Dataset) -> list[Patent]:
        key = self._key(dataset)
        if key not in self._records:
            self._records[key] = corpus_records(dataset)
        return self._records[key]

    def get(self, dataset: Dataset, model: str | None, progress: Progress | None = None,
            title_model: str | None = None) -> Workspace:
        """The workspace of ``dataset``'s corpus indexed with ``model`` (None: BM25 only) and title vectors by
        ``title_model`` (what the learned fusion reads; None: none)."""
        key = (self._key(dataset), model, title_model)
        if key not in self._built:
            name = f"{key[0]}-{model or 'bm25'}" + (f"-{title_model}" if title_model else "")
            ws = Workspace(self.root / name.replace("/", "_"))
            with Store(ws.store_path) as store:
                if store.count("patents") == 0:
                    store.write_batch("patents", self.records(dataset), str(dataset.path))
            build_snapshot(ws, "patents", dense_model=model, progress=progress, title_model=title_model)
            self._built[key] = ws
        return self._built[key]


def resolve_qrels(dataset: Dataset, workspace: Workspace) -> dict[str, dict[str, int]]:
    """Qrels with corpus ids mapped to the ids the store kept (an exact duplicate counts as its original)."""
    out: dict[str, dict[str, int]] = {}
    with Store(workspace.store_path) as store:
        aliases = store.aliases("patents")
    for qid, docs in dataset.qrels.items():
        for doc_id, grade in docs.items():
            target = aliases.get(doc_id, doc_id)
            out.setdefault(qid, {})[target] = max(grade, out.get(qid, {}).get(target, grade))
    return out


def run_dataset(dataset: Dataset, config: EvalConfig, workspaces: Workspaces, home: Path | None = None,
                progress: Progress | None = None) -> tuple[Run, dict[str, dict[str, int]], RankerConfig]:
    """Search every evaluated query; returns the run (top ``DEPTH`` per query), resolved qrels and the config."""
    ranker = config.ranker(load_config(home))
    queries = dataset.evaluated_queries()
    model = ranker.dense_model if ranker.mode in ("dense", "hybrid") and config.mode != "rank-bm25" else None
    titles = ranker.title_model if model and ranker.mode == "hybrid" and ranker.fusion == "learned" else None
    workspace = workspaces.get(dataset, model, progress, titles)
    qrels = resolve_qrels(dataset, workspace)
    if config.mode == "rank-bm25":
        return rank_bm25_run(dataset, workspaces, queries, progress), qrels, ranker
    searcher = Searcher(workspace, ranker, ranker_model=model_path(home))  # the model `eval tune` fitted in home
    run: Run = {}
    no_filters = PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"])
    try:
        for i, (qid, query) in enumerate(queries.items(), 1):
            if config.mode == "bm25-translated":
                run[qid] = translated_bm25_run(searcher, query["text"], no_filters)
            else:
                run[qid] = shown_run(searcher.search_patents(query["text"], k=DEPTH, filters=no_filters))
            if progress:
                progress("queries", i, len(queries))
    finally:
        searcher.close()
    return run, qrels, ranker


def shown_run(results: list[Result], depth: int = DEPTH) -> dict[str, float]:
    """Results in the order they are shown, cut at ``depth``: each result with its score, then each near-duplicate
    folded under it with a score between its head's and the next result's (so the order holds; a group tied with
    the next result stays tied)."""
    run: dict[str, float] = {}
    for i, r in enumerate(results):
        below = results[i + 1].score if i + 1 < len(results) else r.score - 1e-6
        step = (r.score - below) / (len(r.duplicates) + 1)
        for j, doc_id in enumerate([r.id, *r.duplicates]):
            if len(run) == depth:
                return run
            run.setdefault(doc_id, r.score - j * step)
    return run


def translated_bm25_run(searcher: Searcher, text: str, filters: PatentFilters, k: int = 60) -> dict[str, float]:
    """BM25 alone with the query rendered per document language (translated for the other), the language lists
    interleaved by reciprocal rank: translated BM25 as a retriever of its own."""
    snap = searcher.snapshot("patents")
    mask = snap.facets.patent_mask(filters)
    terms = snap.bm25.query_terms(text)
    scores = np.where(mask, snap.bm25.scores_for_terms(terms), 0.0)
    fused: dict[int, float] = {}
    for r in searcher.renderings(snap, text, terms, scores, mask, DEPTH).values():
        for rank, p in enumerate(r.top, 1):
            fused[p] = fused.get(p, 0.0) + 1.0 / (k + rank)
    top = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:DEPTH]
    return {snap.bm25.ids[p]: s for p, s in top}


def rank_bm25_run(dataset: Dataset, workspaces: Workspaces, queries: dict[str, dict[str, Any]],
                  progress: Progress | None = None) -> Run:
    """The reference: rank-bm25's BM25Plus over the same analyzer tokens and parameters as the served BM25."""
    from rank_bm25 import BM25Plus

    from indexes.bm25 import DEFAULT_PARAMS

    records = workspaces.records(dataset)
    analyzer = get_analyzer()
    seen: set[str] = set()
    kept = []
    with Store(workspaces.get(dataset, None).store_path) as store:  # the same de-duplicated documents
        stored = set(store.ids("patents"))
    for r in records:
        if r.id in stored and r.id not in seen:
            seen.add(r.id)
            kept.append(r)
    tokens = analyzer.tokenize_many([indexed_text(r) for r in kept])
    bm25 = BM25Plus(tokens, k1=DEFAULT_PARAMS["k1"], b=DEFAULT_PARAMS["b"], delta=DEFAULT_PARAMS["delta"])
    run: Run = {}
    for i, (qid, query) in enumerate(queries.items(), 1):
        terms = [t for t in analyzer.tokenize(query["text"]) if t in bm25.idf]
        if terms:
            scores = np.asarray(bm25.get_scores(terms))
            # BM25+ gives every document delta * idf per query term it lacks; like the served index, return
            # only documents that match at least one term
            baseline = sum(bm25.idf[t] * DEFAULT_PARAMS["delta"] for t in terms)
            top = [j for j in np.lexsort((np.arange(len(kept)), -np.round(scores, 6)))[:DEPTH]
                   if scores[j] > baseline + 1e-9]
            run[qid] = {kept[j].id: float(scores[j]) for j in top}
        else:
            run[qid] = {}
        if progress:
            progress("queries", i, len(queries))
    return run
