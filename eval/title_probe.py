"""Would a multilingual-e5-small *title* channel pay in the learned ranker? A probe of the dev splits, reported
once on the test splits; not the served path.

Why titles: e5-small wins within one language (RESULTS.md) but embeds whole documents at a few per second here
(about 80 minutes for the sample), while a title embeds at ~120 a second (the sample's 20,081 distinct titles in
about 3.5 minutes), and in the judged shortlist pairs the e5 title-title cosine was the best single predictor of
"good" (AUC 0.80, ``matcher/pair_model.py``). A record without a title (KPPatent abstracts) stands in with the
subject its abstract opens with (``title_of``).

What it does, per set: retrieve every query once with the served searcher (the served features), add the title
channel's columns (``TITLE_CHANNEL``: the e5 cosine of the query and each candidate's title, normalised within
the candidate's language and over the pool like the served dense columns), then cross-validate the served
feature set and the extended one with the same listwise fit, folds and L2 grid as ``pmatch eval tune``, on the
dev and train splits only. Each feature set's fit with the best cross-validated mean is refitted on every dev
and train query and scored once on the test splits, beside the served model, with a paired t-test per set. The
candidate pool is the served one (the title channel reranks; it retrieves nothing), so the test figures are
nDCG@10 of the reranked pool, the same measure as ``eval.tune``'s.

    python -m eval.title_probe --data eval/datasets/known_item_zh --data eval/datasets/demands ...
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from eval.beir import Dataset, load_dataset
from eval.runner import DEPTH, Workspaces, resolve_qrels
from eval.tune import (
    FIT_SPLITS,
    L2_GRID,
    QueryFeatures,
    _cross_validate,
    _fold,
    _position_qrels,
    fit_listwise,
    ndcg_per_query,
)
from matcher.config import RankerConfig, load_config
from matcher.features import FEATURES, RR_K
from matcher.filters import PatentFilters
from matcher.fusion.learned import DEFAULT_PATH, LearnedRanker
from matcher.search import Searcher

TITLE_MODEL = "e5-small-int8"  # the encoder a served title channel can afford per query (indexes.e5_int8)
TITLE_CHARS = 80
TITLE_CHANNEL = (
    "e5t_cos",  # e5 cosine of the query and the candidate's title
    "e5t_gap_lang",  # that cosine minus the best of the candidates in the same language (<= 0)
    "e5t_z",  # the cosine standardised over the query's candidates
    "e5t_rr_lang",  # 10 / (10 + rank) by that cosine among the candidates in the same language
)


_OPENING = re.compile(r"^(?:根据)?本(?:发明|公开|申请|实用新型)(?:的)?(?:实施例)?"
                      r"(?:涉及|公开了?|提供了?|是关于|属于|为|是)?")
_CLAUSE_END = re.compile(r"[，。；：,.;:]")


def title_of(doc: dict[str, Any]) -> str:
    """The text the title channel embeds: the title; else the subject an abstract opens with ("本发明公开了一种X，
    ..." -> "一种X"), else the first ``TITLE_CHARS`` characters of the text."""
    if doc.get("title"):
        return str(doc["title"]).strip()
    text = str(doc.get("text", "")).strip()
    opening = _OPENING.match(text)
    if opening and opening.end() > 0:
        subject = _CLAUSE_END.split(text[opening.end():], maxsplit=1)[0].strip()
        if subject:
            return subject[:TITLE_CHARS]
    return text[:TITLE_CHARS]


def title_columns(cosines: np.ndarray, languages: np.ndarray) -> np.ndarray:
    """(n, len(TITLE_CHANNEL)) from the pool's title cosines and each candidate's language."""
    cos = np.asarray(cosines, dtype=np.float64)
    out = np.zeros((cos.size, len(TITLE_CHANNEL)))
    if not cos.size:
        return out
    out[:, 0] = cos
    for lang in np.unique(languages):
        rows = np.flatnonzero(languages == lang)
        out[rows, 1] = cos[rows] - cos[rows].max()
        order = rows[np.argsort(-cos[rows], kind="stable")]
        out[order, 3] = RR_K / (RR_K + np.arange(1, rows.size + 1))
    sd = float(cos.std())
    out[:, 2] = (cos - cos.mean()) / sd if sd > 1e-9 else 0.0
    return out


def _collect(d: Dataset, workspaces: Workspaces, cfg: RankerConfig, embedder: Any,
             vectors: dict[str, np.ndarray]) -> list[QueryFeatures]:
    """Every evaluated query's pool: the served features with the title channel appended."""
    ws = workspaces.get(d, cfg.dense_model)
    qrels = resolve_qrels(d, ws)
    searcher = Searcher(ws, cfg)
    snap = searcher.snapshot("patents")
    mask = snap.facets.patent_mask(PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"]))
    queries = d.evaluated_queries()
    missing_title = np.zeros(embedder.dim, dtype=np.float32)
    rows = []
    for (qid, q), qv in zip(queries.items(), embedder.encode_queries([q["text"] for q in queries.values()]),
                            strict=True):
        c = searcher.candidates(snap, q["text"], mask, "hybrid", max(cfg.candidates, DEPTH))
        pool, x = searcher.learned_features(snap, c)
        titles = np.stack([vectors.get(snap.bm25.ids[int(p)], missing_title) for p in pool]) if pool.size \
            else np.zeros((0, embedder.dim))
        extra = title_columns(titles @ qv, np.asarray(snap.languages[pool], dtype=str))
        judged = {snap.bm25.position(doc): g for doc, g in qrels.get(qid, {}).items()}
        grades = np.array([judged.get(int(p), 0) for p in pool], dtype=np.int64)
        found = set(pool.tolist())
        lost = np.array([g for p, g in judged.items() if g > 0 and p not in found], dtype=np.int64)
        rows.append(QueryFeatures(d.name, qid, np.hstack([x, extra]), grades, pool, lost))
    searcher.close()
    return rows


def _per_query(queries: list[QueryFeatures], margins: list[np.ndarray]) -> dict[str, dict[str, float]]:
    return ndcg_per_query(queries, margins, _position_qrels(queries))


def _only(queries: list[QueryFeatures], width: int) -> list[QueryFeatures]:
    return [QueryFeatures(q.set_name, q.qid, q.x[:, :width], q.grades, q.positions, q.missing) for q in queries]


def probe(data: list[Path]) -> dict[str, Any]:
    from scipy.stats import ttest_rel

    from indexes.embedders import load_embedder

    base = load_config(None)
    cfg = RankerConfig.model_validate({**base.model_dump(), "mode": "hybrid", "fusion": "learned",
                                       "translate_queries": True})
    fit_sets = [load_dataset(p, "dev") for p in data] + [load_dataset(p, "train") for p in data
                                                         if (p / "qrels" / "train.tsv").is_file()]
    test_sets = [load_dataset(p, "test") for p in data]
    embedder = load_embedder(TITLE_MODEL)
    titles: dict[str, str] = {}
    for d in (*fit_sets, *test_sets):
        for doc in d.corpus:
            titles.setdefault(doc["_id"], title_of(doc))
    distinct = sorted(set(titles.values()))
    vecs = embedder.encode_documents(distinct)
    row = {t: i for i, t in enumerate(distinct)}
    vectors = {doc_id: vecs[row[t]] for doc_id, t in titles.items()}
    workspaces = Workspaces()
    try:
        fit = [q for d in fit_sets for q in _collect(d, workspaces, cfg, embedder, vectors)]
        test = [q for d in test_sets for q in _collect(d, workspaces, cfg, embedder, vectors)]
    finally:
        workspaces.close()
    assert all(d.split in FIT_SPLITS for d in fit_sets)  # the fits below see dev and train queries only
    width = len(FEATURES)
    folds = [_fold(q.qid) for q in fit]
    out: dict[str, Any] = {"title_model": TITLE_MODEL, "titles_embedded": len(distinct), "cv": {}, "test": {}}
    served = LearnedRanker.load(DEFAULT_PATH, FEATURES)  # the shipped model, whatever a workspace fitted
    per_query = {"served": _per_query(test, [served.margin(q.x[:, :width]) for q in test])}
    for label, names in (("served features", FEATURES), ("served + title channel", (*FEATURES, *TITLE_CHANNEL))):
        train, held = _only(fit, len(names)), _only(test, len(names))
        best: tuple[float, float] | None = None
        for l2 in L2_GRID:
            margins = _cross_validate(train, folds, lambda t, l2=l2, names=names: fit_listwise(t, l2, names),
                                      lambda m, x: m.margin(x))
            per_set = {n: float(np.mean(list(v.values()))) for n, v in _per_query(train, margins).items()}
            mean = float(np.mean(list(per_set.values())))
            out["cv"][f"{label}, l2={l2:g}"] = {**per_set, "mean": mean}
            if best is None or mean > best[1]:
                best = (l2, mean)
        assert best is not None
        model = fit_listwise(train, best[0], names)
        per_query[f"{label} (l2={best[0]:g}, refitted)"] = _per_query(held, [model.margin(q.x) for q in held])
    first = "served"
    for label, sets in per_query.items():
        out["test"][label] = {}
        for name, values in sets.items():
            qids = sorted(values)
            entry: dict[str, Any] = {"queries": len(qids), "ndcg@10": float(np.mean([values[q] for q in qids]))}
            if label != first:
                entry["p_vs_served"] = float(ttest_rel([per_query[first][name][q] for q in qids],
                                                        [values[q] for q in qids]).pvalue)
            out["test"][label][name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, action="append", required=True, help="A BEIR folder (repeatable)")
    args = parser.parse_args()
    print(json.dumps(probe(args.data), indent=1))


if __name__ == "__main__":
    main()
