"""Per-candidate features for the learned ranker: what each retriever says about one document for one query.

A query is searched once per document language: BM25 with the query *rendered* in that language (as written, or
translated by ``indexes.translate``) and dense per language. Every candidate is then described by numbers that
mean the same thing for every query, so one model can weigh them: scores and ranks normalised within the
candidate's own language list (BM25 scores of a translated query are not comparable with those of the original),
the language match, whether its language's rendering was translated, how much of the rendered query the document
covers, and the query's length. ``FEATURES`` names the columns; the model file stores them and refuses others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FEATURES = (
    "bm25_log",  # log(1 + BM25 score of the document for its language's rendering)
    "bm25_rel",  # that score / the best BM25 score in the same language list (0..1)
    "bm25_rr",  # 10 / (10 + rank) in the language's BM25 list, 0 if not in it
    "coverage",  # idf-weighted share of the rendering's terms the document contains
    "dense_cos",  # cosine of the query and document vectors
    "dense_gap",  # cosine minus the best cosine of the same language list (<= 0 for listed documents)
    "dense_gap_all",  # cosine minus the best cosine of every candidate
    "dense_rr",  # 10 / (10 + rank) in the language's dense list, 0 if not in it
    "same_language",  # 1 if the document is in the query's language
    "translated",  # 1 if the document's language saw a translated query
    "query_terms_log",  # log(1 + terms of the rendering the index knows)
    "translated_x_bm25_rel",
    "translated_x_coverage",
    "translated_x_dense_gap",
)
RR_K = 10.0


@dataclass
class Rendering:
    """The query as one document language's BM25 saw it."""

    language: str
    text: str
    translated: bool
    terms: list[str]
    scores: np.ndarray  # BM25 score per document position (0 outside this language and the filter mask)
    top: dict[int, float] = field(default_factory=dict)  # the best ``depth`` positions -> score, best first


def feature_matrix(pool: np.ndarray, pool_languages: np.ndarray, query_language: str,
                   renderings: dict[str, Rendering], dense_lists: dict[str, dict[int, float]],
                   cosines: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """(len(pool), len(FEATURES)) float64: the features of each pooled position.

    ``pool_languages[i]`` is the language of ``pool[i]``; ``dense_lists[lang]`` is that language's dense top list
    (position -> cosine, best first); ``cosines[i]`` the cosine of ``pool[i]`` whether listed or not;
    ``coverage[i]`` the share of its language's rendering that ``pool[i]`` covers.
    """
    n = pool.size
    x = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return x
    col = {name: i for i, name in enumerate(FEATURES)}
    best_all = float(cosines.max())
    for lang in np.unique(pool_languages):
        rows = np.flatnonzero(pool_languages == lang)
        positions = pool[rows]
        r = renderings.get(str(lang))
        if r is not None:
            bm = np.asarray(r.scores[positions], dtype=np.float64)
            best = max(r.top.values(), default=0.0)
            x[rows, col["bm25_log"]] = np.log1p(bm)
            x[rows, col["bm25_rel"]] = bm / best if best > 0 else 0.0
            rank = {p: i for i, p in enumerate(r.top, 1)}
            x[rows, col["bm25_rr"]] = [RR_K / (RR_K + rank[p]) if p in rank else 0.0 for p in positions.tolist()]
            x[rows, col["translated"]] = float(r.translated)
            x[rows, col["query_terms_log"]] = np.log1p(len(r.terms))
        dl = dense_lists.get(str(lang), {})
        cos = cosines[rows]
        best_cos = max(dl.values(), default=float(cos.max()))
        x[rows, col["dense_gap"]] = cos - best_cos
        drank = {p: i for i, p in enumerate(sorted(dl, key=lambda p: -dl[p]), 1)}
        x[rows, col["dense_rr"]] = [RR_K / (RR_K + drank[p]) if p in drank else 0.0 for p in positions.tolist()]
        x[rows, col["same_language"]] = float(str(lang) == query_language)
    x[:, col["coverage"]] = coverage
    x[:, col["dense_cos"]] = cosines
    x[:, col["dense_gap_all"]] = cosines - best_all
    t = x[:, col["translated"]]
    x[:, col["translated_x_bm25_rel"]] = t * x[:, col["bm25_rel"]]
    x[:, col["translated_x_coverage"]] = t * x[:, col["coverage"]]
    x[:, col["translated_x_dense_gap"]] = t * x[:, col["dense_gap"]]
    return x
