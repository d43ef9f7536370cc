"""Tokenizing texts and counting their terms, in chunks, in worker processes for a big corpus: the input of a
BM25 segment (``indexes.bm25_segment``).

Building at scale: texts are tokenized in chunks, in worker processes when there are many (``workers``; default:
the CPUs available, env ``PMATCH_INDEX_WORKERS``), and each chunk comes back as (its vocabulary, and per document
the distinct term ids and their counts); the parent only re-numbers chunk vocabularies and concatenates arrays,
and the CSC matrix is made with scipy's CSR->CSC conversion (a counting sort).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexes.analyzer import AnalyzerConfig, get_analyzer
from indexes.settings import index_settings

CHUNK_DOCS = 2_000  # texts per tokenization task
PARALLEL_MIN_DOCS = 20_000  # below this, worker start-up (loading the analyzer: ~1 s) costs more than it saves


def default_workers() -> int:
    """Worker processes for tokenizing a big corpus: env ``PMATCH_INDEX_WORKERS``, else the CPUs available."""
    workers = index_settings().index_workers
    if workers:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class TermCounts:
    """Term counts of a run of documents: a local vocabulary, and per document its distinct terms and counts."""

    vocab: list[str]  # local term id -> term
    lengths: np.ndarray  # int64 (docs,): number of terms (with repeats) per document
    docs: np.ndarray  # int32 (pairs,): local document index, ascending
    terms: np.ndarray  # int32 (pairs,): local term id
    tf: np.ndarray  # int32 (pairs,): count of the term in the document


def count_terms(token_lists: Iterable[Sequence[str]]) -> TermCounts:
    local: dict[str, int] = {}
    flat: list[int] = []
    lengths: list[int] = []
    for terms in token_lists:
        lengths.append(len(terms))
        flat.extend([local.setdefault(t, len(local)) for t in terms])
    lens = np.asarray(lengths, dtype=np.int64)
    width = max(len(local), 1)
    keys = np.repeat(np.arange(lens.size, dtype=np.int64), lens) * width + np.asarray(flat, dtype=np.int64)
    pairs, tf = np.unique(keys, return_counts=True)  # sorted: by document, then term
    return TermCounts(list(local), lens, (pairs // width).astype(np.int32), (pairs % width).astype(np.int32),
                   tf.astype(np.int32))


def _count_texts(config: dict[str, Any], texts: list[str]) -> TermCounts:
    """Worker task: tokenize ``texts`` with the analyzer of ``config`` and count their terms."""
    analyzer = get_analyzer(AnalyzerConfig.from_dict(config))
    return count_terms(analyzer.tokenize(t) for t in texts)


def count_corpus(texts: Sequence[str], analyzer: AnalyzerConfig | None = None, workers: int = 1
                 ) -> Iterator[TermCounts]:
    """Tokenize ``texts`` and count their terms, ``CHUNK_DOCS`` texts per ``TermCounts``, in order.

    With ``workers`` > 1 the chunks are tokenized in that many processes (started with ``spawn``: the caller may
    hold threads, OpenMP's or torch's, that a forked child would inherit locked; a script calling this at import
    time needs the usual ``if __name__ == "__main__":`` guard).
    """
    config = analyzer or AnalyzerConfig()
    parts = chunks(texts, CHUNK_DOCS)
    if workers <= 1:
        tokenizer = get_analyzer(config)
        for chunk in parts:
            yield count_terms(tokenizer.tokenize(t) for t in chunk)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_count_texts, _repeat(config.to_dict()), map(list, parts))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _repeat(value: Any) -> Iterator[Any]:
    while True:
        yield value


def tokenizing_workers(texts: int, workers: int | None) -> int:
    """Processes to tokenize ``texts`` texts with: ``workers`` (None: ``default_workers()``), but 1 below
    ``PARALLEL_MIN_DOCS`` texts."""
    workers = default_workers() if workers is None else max(1, int(workers))
    return workers if workers > 1 and texts >= PARALLEL_MIN_DOCS else 1
