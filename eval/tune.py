"""Fitting the learned ranker on dev and train splits only (``pmatch eval tune``; test splits are refused).

The retrievers run once per query (their candidates' features can be cached on disk: ``collect_features``); the
models are then fitted and cross-validated on those features alone, five folds by query hash. Each set counts
equally (a macro average; a set's train and dev splits are one set), so the 310-query known-item set cannot
outvote the 15 judged demands, nor the cross-lingual set (every answer in the other language) the rest. The
features carry no language prior (``matcher.features``), so the mix decides how much each channel's evidence is
worth, not which language wins. Chosen by cross-validated mean nDCG@10: a linear scorer fitted listwise (softmax
cross-entropy per query); pointwise logistic regression and LambdaMART (lightgbm, when installed) are
cross-validated beside it for the record. The relevance calibration (Platt scaling) is fitted on held-out margins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.beir import Dataset
from eval.metrics import score
from eval.runner import DEPTH, Progress, Workspaces, resolve_qrels
from matcher.config import RankerConfig
from matcher.features import FEATURES, RETRIEVER_FEATURES, TITLE_CHANNEL, with_interactions
from matcher.filters import PatentFilters
from matcher.fusion.learned import LearnedRanker
from matcher.search import Searcher


def tuned_config_path(home: Path | None) -> Path:
    return (home or Path(".pmatch")) / "ranker.json"


# --- the learned ranker ---------------------------------------------------------------------------------------
FEATURE_CACHE_VERSION = 2
FIT_SPLITS = ("dev", "train")  # a set's train split (the needs set has one) joins its dev split as one set
FOLDS = 5
TOP_CALIBRATION = 10  # the calibration is fitted on what a user sees: each query's top 10 by held-out margin


@dataclass
class QueryFeatures:
    """One dev or train query's candidates: features, graded labels (0 = not judged relevant), positions."""

    set_name: str
    qid: str
    x: np.ndarray
    grades: np.ndarray
    positions: np.ndarray
    missing: np.ndarray  # grades of the judged-relevant documents no retriever found (they count as misses)


def _cache_key(d: Dataset, base: RankerConfig, ws_key: str) -> str:
    h = hashlib.sha1()
    h.update(json.dumps([FEATURE_CACHE_VERSION, RETRIEVER_FEATURES, d.name, d.split, ws_key, base.model_dump()],
                        sort_keys=True).encode())
    for qid, q in sorted(d.evaluated_queries().items()):
        h.update(f"{qid}\t{q['text']}\t{sorted(d.qrels[qid].items())}".encode())
    return h.hexdigest()[:20]


def collect_features(datasets: list[Dataset], workspaces: Workspaces, base: RankerConfig,
                     cache_dir: Path | None = None, progress: Progress | None = None) -> list[QueryFeatures]:
    """Every evaluated query's candidate features, retrieving once (cached in ``cache_dir`` when given)."""
    for d in datasets:
        if d.split not in FIT_SPLITS:
            raise ValueError(f"{d.path}: the ranker is fitted on dev and train splits only (got {d.split!r})")
    cfg = RankerConfig.model_validate({**base.model_dump(), "mode": "hybrid", "fusion": "learned",
                                                        "translate_queries": True})
    everything = PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"])
    out: list[QueryFeatures] = []
    for d in datasets:
        ws = workspaces.get(d, cfg.dense_model, progress, cfg.title_model)
        path = cache_dir / f"features-{d.name}-{d.split}-{_cache_key(d, cfg, ws.home.name)}.npz" if cache_dir else None
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                qids, splits, msplits = list(z["qids"]), z["splits"], z["msplits"]
                for i, qid in enumerate(qids):
                    a, b = int(splits[i]), int(splits[i + 1])
                    out.append(QueryFeatures(d.name, str(qid), with_interactions(z["x"][a:b]), z["grades"][a:b],
                                             z["positions"][a:b],
                                             z["missing"][int(msplits[i]):int(msplits[i + 1])]))
            continue
        qrels = resolve_qrels(d, ws)
        searcher = Searcher(ws, cfg)
        snap = searcher.snapshot("patents")
        mask = snap.facets.patent_mask(everything)
        queries = d.evaluated_queries()
        rows: list[QueryFeatures] = []
        for i, (qid, q) in enumerate(queries.items(), 1):
            c = searcher.candidates(snap, q["text"], mask, "hybrid", max(cfg.candidates, DEPTH))
            pool, x = searcher.learned_features(snap, c)
            judged = {snap.bm25.position(doc): g for doc, g in qrels.get(qid, {}).items()}
            grades = np.array([judged.get(int(p), 0) for p in pool], dtype=np.int64)
            found = set(pool.tolist())
            missing = np.array([g for p, g in judged.items() if g > 0 and p not in found], dtype=np.int64)
            rows.append(QueryFeatures(d.name, qid, x, grades, pool, missing))
            if progress:
                progress(f"retrieve {d.name}", i, len(queries))
        searcher.close()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            splits = np.cumsum([0, *[r.x.shape[0] for r in rows]])
            msplits = np.cumsum([0, *[r.missing.size for r in rows]])
            np.savez(path, qids=np.array([r.qid for r in rows]), splits=splits, msplits=msplits,
                     missing=np.concatenate([r.missing for r in rows]) if rows else np.zeros(0, dtype=np.int64),
                     x=np.concatenate([r.x[:, :len(RETRIEVER_FEATURES)] for r in rows]) if rows
                     else np.zeros((0, len(RETRIEVER_FEATURES))),  # the interactions are recomputed on load
                     grades=np.concatenate([r.grades for r in rows]) if rows else np.zeros(0, dtype=np.int64),
                     positions=np.concatenate([r.positions for r in rows]) if rows else np.zeros(0, dtype=np.int64))
        out.extend(rows)
    return out


def _fold(qid: str) -> int:
    return int(hashlib.sha1(f"fold:{qid}".encode()).hexdigest(), 16) % FOLDS


def _weights(queries: list[QueryFeatures]) -> np.ndarray:
    """Each set counts equally, each query equally within its set, each candidate equally within its query."""
    per_set: dict[str, int] = {}
    for q in queries:
        per_set[q.set_name] = per_set.get(q.set_name, 0) + 1
    parts = [np.full(q.x.shape[0], 1.0 / (per_set[q.set_name] * max(q.x.shape[0], 1))) for q in queries]
    w = np.concatenate(parts)
    return w / w.mean()


def _standardise(queries: list[QueryFeatures]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([q.x for q in queries])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_listwise(queries: list[QueryFeatures], l2: float, names: tuple[str, ...] = FEATURES) -> LearnedRanker:
    """A linear scorer fitted listwise: per query, the softmax of the margins over its candidates should put its
    mass on the relevant ones (cross-entropy against the relevant documents, uniformly; ListNet's top-one loss),
    plus ``l2`` * |w|^2. Sets count equally, queries equally within a set; a query with no relevant candidate
    teaches nothing and is left out."""
    from scipy.optimize import minimize

    mean, scale = _standardise(queries)
    per_set: dict[str, int] = {}
    for q in queries:
        per_set[q.set_name] = per_set.get(q.set_name, 0) + 1
    data = [((q.x - mean) / scale, (q.grades > 0).astype(np.float64), 1.0 / per_set[q.set_name])
            for q in queries if (q.grades > 0).any()]
    total = sum(w for _, _, w in data) or 1.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = l2 * float(w @ w), 2 * l2 * w
        for x, y, qw in data:
            m = x @ w
            p = np.exp(m - m.max())
            p /= p.sum()
            t = y / y.sum()
            value -= qw / total * float(t @ np.log(p + 1e-300))
            grad = grad - qw / total * (x.T @ (t - p))
        return value, grad

    w = minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B").x
    return LearnedRanker(names, mean, scale, w.astype(np.float64), 0.0)


def fit_logistic(queries: list[QueryFeatures], c: float, names: tuple[str, ...] = FEATURES) -> LearnedRanker:
    """Pointwise logistic regression (relevant = grade > 0) on standardised features, sets weighted equally."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardise(queries)
    x = np.concatenate([q.x for q in queries])
    y = (np.concatenate([q.grades for q in queries]) > 0).astype(int)
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit((x - mean) / scale, y, sample_weight=_weights(queries))
    return LearnedRanker(names, mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


def fit_lambdamart(queries: list[QueryFeatures]) -> Any:
    import lightgbm

    x = np.concatenate([q.x for q in queries])
    y = np.concatenate([np.minimum(q.grades, 3) for q in queries])
    model = lightgbm.LGBMRanker(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=20,
                                verbose=-1, n_jobs=1)
    model.fit(x, y, group=[q.x.shape[0] for q in queries])
    return model


def ndcg_per_query(queries: list[QueryFeatures], margins: list[np.ndarray],
                   qrels_by_set: dict[str, dict[str, dict[str, int]]]) -> dict[str, dict[str, float]]:
    """Per set, each query's nDCG@10 of its candidates ordered by ``margins`` (the ablation's metric code)."""
    per_set: dict[str, dict[str, dict[str, float]]] = {}
    for q, m in zip(queries, margins, strict=True):
        order = np.lexsort((q.positions, -np.round(m, 12)))[:DEPTH]
        per_set.setdefault(q.set_name, {})[q.qid] = {str(int(q.positions[i])): float(m[i]) for i in order}
    return {name: {qid: v["ndcg@10"] for qid, v in score(qrels_by_set[name], run, ["ndcg@10"])[1].items()}
            for name, run in per_set.items()}


def ndcg_of(queries: list[QueryFeatures], margins: list[np.ndarray],
            qrels_by_set: dict[str, dict[str, dict[str, int]]]) -> dict[str, float]:
    """Mean nDCG@10 per set of the candidates ordered by ``margins``."""
    return {name: float(np.mean(list(values.values())))
            for name, values in ndcg_per_query(queries, margins, qrels_by_set).items()}


def _position_qrels(queries: list[QueryFeatures]) -> dict[str, dict[str, dict[str, int]]]:
    # judged documents outside the candidate pool count too (misses), under positions no candidate has
    out: dict[str, dict[str, dict[str, int]]] = {}
    for q in queries:
        judged = {str(int(p)): int(g) for p, g in zip(q.positions, q.grades, strict=True) if g > 0}
        judged.update({str(-1 - i): int(g) for i, g in enumerate(q.missing)})
        out.setdefault(q.set_name, {})[q.qid] = judged
    return out


L2_GRID = (1e-3, 1e-2, 3e-2)


def _cross_validate(queries: list[QueryFeatures], folds: list[int], fit: Any, predict: Any) -> list[np.ndarray]:
    margins: list[np.ndarray] = [np.zeros(0)] * len(queries)
    for f in range(FOLDS):
        model = fit([q for q, g in zip(queries, folds, strict=True) if g != f])
        for j, (q, g) in enumerate(zip(queries, folds, strict=True)):
            if g == f:
                margins[j] = predict(model, q.x)
    return margins


def fit_ranker(queries: list[QueryFeatures], progress: Progress | None = None, compare: bool = True
               ) -> tuple[LearnedRanker, dict[str, Any]]:
    """Choose the model by 5-fold cross-validation over the dev queries (mean nDCG@10 over sets), fit it on all of
    them, and calibrate it on the held-out margins of each query's top 10. ``compare`` also cross-validates the
    alternatives (pointwise logistic regression, LambdaMART) for the record. The same is done without the title
    channel (rows named ``... without titles``): that model ships inside the first (``without_titles``), for
    snapshots that have no title vectors. Returns the model and the table."""
    report: dict[str, Any] = {"cv": {}, "queries": {}}
    for q in queries:
        report["queries"][q.set_name] = report["queries"].get(q.set_name, 0) + 1
    model = _fit_chosen(queries, FEATURES, report, "", progress, compare)
    report["chosen"] = model.info["chosen"]
    plain = tuple(f for f in FEATURES if f not in TITLE_CHANNEL)
    cols = [FEATURES.index(f) for f in plain]
    without = _fit_chosen([replace(q, x=q.x[:, cols]) for q in queries], plain, report, " without titles",
                          progress, False)
    report["chosen_without_titles"] = without.info["chosen"]
    return replace(model, without_titles=without), report


def _fit_chosen(queries: list[QueryFeatures], names: tuple[str, ...], report: dict[str, Any], suffix: str,
                progress: Progress | None, compare: bool) -> LearnedRanker:
    """``fit_ranker`` over the columns ``names`` (``queries``' matrices hold just those), its rows of the table
    (``report["cv"]``) named with ``suffix``; the model's ``info["chosen"]`` names the chosen row."""
    qrels = _position_qrels(queries)
    folds = [_fold(q.qid) for q in queries]

    def record(name: str, margins: list[np.ndarray]) -> None:
        per_set = ndcg_of(queries, margins, qrels)
        report["cv"][name + suffix] = {**per_set, "mean": float(np.mean(list(per_set.values())))}

    held: dict[float, list[np.ndarray]] = {}
    for i, l2 in enumerate(L2_GRID, 1):
        held[l2] = _cross_validate(queries, folds, lambda t, l2=l2: fit_listwise(t, l2, names),
                                   lambda m, x: m.margin(x))
        record(f"listwise linear l2={l2:g}", held[l2])
        if progress:
            progress("cross-validate" + suffix, i, len(L2_GRID))
    if compare:
        record("pointwise logistic C=10", _cross_validate(queries, folds, lambda t: fit_logistic(t, 10.0, names),
                                                          lambda m, x: m.margin(x)))
        try:
            record("lambdamart (lightgbm)", _cross_validate(queries, folds, fit_lambdamart, lambda m, x: m.predict(x)))
        except ImportError:
            report["cv"]["lambdamart (lightgbm)"] = "lightgbm not installed"
        for name in ("bm25_rr", "dense_cos"):  # single-feature references: each retriever alone, per language
            col = names.index(name)
            record(f"reference: {name} alone", [q.x[:, col] for q in queries])
    best = max(L2_GRID, key=lambda l2: (round(report["cv"][f"listwise linear l2={l2:g}{suffix}"]["mean"], 6), l2))
    chosen = f"listwise linear l2={best:g}{suffix}"
    model = fit_listwise(queries, best, names)
    # Platt scaling on held-out margins of what users see (each query's top 10)
    from sklearn.linear_model import LogisticRegression

    ms, ys = [], []
    for q, m in zip(queries, held[best], strict=True):
        top = np.argsort(-m, kind="stable")[:TOP_CALIBRATION]
        ms.append(m[top])
        ys.append(q.grades[top] > 0)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(np.concatenate(ms)[:, None], np.concatenate(ys).astype(int))
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    if a <= 0:
        a, b = 1.0, 0.0
    info = {"fitted_on_queries": dict(report["queries"]), "chosen": chosen, "features": "without the title channel"
            if suffix else "all", "cv_mean_ndcg@10": report["cv"][chosen]["mean"],
            "calibration": "Platt scaling on held-out (5-fold) margins of each query's top 10"}
    return LearnedRanker(model.features, model.mean, model.scale, model.weights, model.bias, (a, b), info)
