"""Per-candidate features for the learned ranker: what each retriever says about one document for one query.

A query is searched once per document language: BM25 with the query *rendered* in that language (as written, or
translated by ``indexes.translate``) and dense per language. Every candidate is then described by numbers that
mean the same thing for every query, so one model can weigh them.

There is no language prior: no feature is constant over a language (a "same language" or "translated" flag would
let the model prefer a language wholesale, which is what a training set whose answers are all in the other
language teaches). Instead each rendering is its own *channel*: the BM25 evidence of the query as written and of
the translated query are separate columns (``bm25_*`` and ``bm25_*_translated``; each zero outside its channel),
because a translated query's scores and ranks are worth less than the original's and only the labels can say by
how much. Scores and ranks are normalised within the candidate's language list (BM25 scores of a translated query
are not comparable with those of the original); the dense cosine is the same model for both languages and so is
also compared across the whole pool (``dense_gap_all``, ``dense_z``).

A linear model over those alone cannot say "trust BM25 of the query as written when it found a document that
covers the whole query" (a known-item query's one answer is in its own language, and loose translations then
crowd it), so three *query* statistics of the as-written channel (``QUERY_STATS``: how much of the query its best
document covers, how far its BM25 top hit is ahead of the second, that hit's score) multiply each channel column
(``*_x_<stat>``, ``INTERACTIONS``). They are computed from the retriever columns alone (``with_interactions``).
Chosen on the dev splits (5-fold CV, mean nDCG@10 0.460 -> 0.467; ``eval/tune_dev.json``).

A *title channel* (``TITLE_CHANNEL``) compares the query with each candidate's title alone, embedded by a second,
smaller model (``RankerConfig.title_model``, e5-small as int8: a query in ~6 ms): within one language e5 is the
stronger model, and a title is short enough to embed for every record. Its columns are zero when the snapshot
has no title vectors, and a model fitted without them ranks instead (``LearnedRanker.for_titles``). Chosen on
the dev splits (5-fold CV, mean nDCG@10 0.467 -> 0.506; ``eval/RESULTS.md``).

``RETRIEVER_FEATURES`` are what the retrievers give; ``FEATURES`` adds the interactions and names every column a
model may use; a model file names the ones it uses and is refused if this build does not compute one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_CHANNEL = (
    "bm25_log",  # log(1 + BM25 score of the document for its language's rendering)
    "bm25_rel",  # that score / the best BM25 score in the same language list (0..1)
    "bm25_rr",  # 10 / (10 + rank) in the language's BM25 list, 0 if not in it
    "coverage",  # idf-weighted share of the rendering's terms the document contains
    "dense_gap",  # cosine minus the best cosine of the same language list (<= 0 for listed documents)
    "dense_rr",  # 10 / (10 + rank) in the language's dense list, 0 if not in it
)
TITLE_CHANNEL = (  # the query against each candidate's title alone (``matcher.texts.title_text``), its own model
    "title_cos",  # cosine of the query and the title vector
    "title_gap_lang",  # that cosine minus the best of the candidates in the same language (<= 0)
    "title_z",  # the cosine standardised over the query's candidates
    "title_rr_lang",  # 10 / (10 + rank) by that cosine among the candidates in the same language
)
RETRIEVER_FEATURES = (
    *_CHANNEL,  # the query as written (the document is in the query's language); 0 for translated candidates
    *(f"{name}_translated" for name in _CHANNEL),  # the same for a translated rendering; 0 for as-written ones
    "dense_cos",  # cosine of the query and document vectors (one model, both languages)
    "dense_gap_all",  # cosine minus the best cosine of every candidate
    "dense_z",  # cosine standardised over this query's candidates
    "dense_rr_all",  # 10 / (10 + rank) by cosine among every candidate
    *TITLE_CHANNEL,
)
QUERY_STATS = (
    "qcov",  # the best as-written coverage among the candidates: does a same-language document hold every term?
    "qgap",  # (best - second) / best as-written BM25 (log) score: is the as-written top hit alone at the top?
    "qtop",  # the best as-written BM25 (log) score
)
_CHANNEL_COLUMNS = (*_CHANNEL, *(f"{name}_translated" for name in _CHANNEL))
INTERACTIONS = tuple(f"{name}_x_{stat}" for name in _CHANNEL_COLUMNS for stat in QUERY_STATS)
FEATURES = (*RETRIEVER_FEATURES, *INTERACTIONS)
RR_K = 10.0


def query_stats(x: np.ndarray) -> np.ndarray:
    """``QUERY_STATS`` of one query's candidates, from their ``RETRIEVER_FEATURES`` columns ``x``."""
    if x.shape[0] == 0:
        return np.zeros(len(QUERY_STATS))
    bm = np.sort(x[:, RETRIEVER_FEATURES.index("bm25_log")])[::-1]
    top1 = float(bm[0])
    top2 = float(bm[1]) if bm.size > 1 else 0.0
    gap = (top1 - top2) / top1 if top1 > 0 else 0.0
    return np.array([float(x[:, RETRIEVER_FEATURES.index("coverage")].max()), gap, top1])


def with_interactions(x: np.ndarray) -> np.ndarray:
    """``FEATURES`` columns from one query's ``RETRIEVER_FEATURES`` columns: each channel column times each query
    statistic appended (names in ``INTERACTIONS``, channel-major)."""
    x = np.asarray(x, dtype=np.float64)
    s = query_stats(x)
    channel = x[:, [RETRIEVER_FEATURES.index(n) for n in _CHANNEL_COLUMNS]]
    inter = (channel[:, :, None] * s[None, None, :]).reshape(x.shape[0], len(INTERACTIONS))
    return np.hstack([x, inter])


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
                   cosines: np.ndarray, coverage: np.ndarray, title_cosines: np.ndarray | None = None
                   ) -> np.ndarray:
    """(len(pool), len(FEATURES)) float64: the features of each pooled position (``with_interactions`` of the
    retriever columns).

    ``pool_languages[i]`` is the language of ``pool[i]``; ``dense_lists[lang]`` is that language's dense top list
    (position -> cosine, best first); ``cosines[i]`` the cosine of ``pool[i]`` whether listed or not;
    ``coverage[i]`` the share of its language's rendering that ``pool[i]`` covers; ``title_cosines[i]`` the
    cosine of the query and ``pool[i]``'s title (None: no title vectors, the columns stay 0). A language with no
    rendering (no BM25 for it) counts as the as-written channel when it is the query's language, else as translated.
    """
    n = pool.size
    x = np.zeros((n, len(RETRIEVER_FEATURES)), dtype=np.float64)
    if n == 0:
        return with_interactions(x)
    col = {name: i for i, name in enumerate(RETRIEVER_FEATURES)}
    for lang in np.unique(pool_languages):
        rows = np.flatnonzero(pool_languages == lang)
        positions = pool[rows]
        r = renderings.get(str(lang))
        translated = r.translated if r is not None else str(lang) != query_language
        suffix = "_translated" if translated else ""
        values: dict[str, np.ndarray | float] = {"coverage": coverage[rows]}
        if r is not None:
            bm = np.asarray(r.scores[positions], dtype=np.float64)
            best = max(r.top.values(), default=0.0)
            rank = {p: i for i, p in enumerate(r.top, 1)}
            values.update(bm25_log=np.log1p(bm), bm25_rel=bm / best if best > 0 else 0.0,
                          bm25_rr=np.array([RR_K / (RR_K + rank[p]) if p in rank else 0.0
                                            for p in positions.tolist()]))
        dl = dense_lists.get(str(lang), {})
        cos = cosines[rows]
        best_cos = max(dl.values(), default=float(cos.max()))
        drank = {p: i for i, p in enumerate(sorted(dl, key=lambda p: -dl[p]), 1)}
        values.update(dense_gap=cos - best_cos,
                      dense_rr=np.array([RR_K / (RR_K + drank[p]) if p in drank else 0.0
                                         for p in positions.tolist()]))
        for name, v in values.items():
            x[rows, col[name + suffix]] = v
    x[:, col["dense_cos"]] = cosines
    x[:, col["dense_gap_all"]] = cosines - float(cosines.max())
    sd = float(cosines.std())
    x[:, col["dense_z"]] = (cosines - float(cosines.mean())) / sd if sd > 1e-9 else 0.0
    order = np.argsort(-cosines, kind="stable")
    rr = np.empty(n)
    rr[order] = RR_K / (RR_K + np.arange(1, n + 1))
    x[:, col["dense_rr_all"]] = rr
    if title_cosines is not None:
        x[:, [col[name] for name in TITLE_CHANNEL]] = title_columns(title_cosines, pool_languages)
    return with_interactions(x)


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
