"""The served snapshot of one collection as a search reads it: its joined BM25, facet and dense indexes and title
vectors (opened by ``matcher.snapshot``) and each position's language, with a mask per language computed once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexes.bm25 import BM25Index
from indexes.dense_segments import SegmentedDense, SegmentRows
from matcher.facet_index import FacetIndex
from matcher.snapshot import SnapshotManifest, open_snapshot
from matcher.store import Collection


@dataclass
class Snapshot:
    """One published, immutable set of indexes for one collection (patents or demands)."""

    kind: Collection
    path: Path
    manifest: SnapshotManifest
    bm25: BM25Index
    facets: FacetIndex
    dense: SegmentedDense | None
    languages: np.ndarray  # language label per position
    language_masks: dict[str, np.ndarray]  # language -> positions in it (computed once, used every query)
    titles: SegmentRows | None = None  # title vectors by position (the learned ranker's title channel), or None

    @classmethod
    def open(cls, kind: Collection, path: Path, mmap: bool = True) -> Snapshot:
        """Open a published snapshot (its segments, joined: ``matcher.snapshot``); ``mmap`` memory-maps the BM25 and
        dense indexes (else reads them in)."""
        opened = open_snapshot(path, mmap=mmap)
        facets = opened.facets
        vocab = np.array(facets.vocabs["language"] + ["?"], dtype=object)
        codes = np.asarray(facets.arrays["language"])
        masks = {lang: codes == i for i, lang in enumerate(facets.vocabs["language"])}
        if facets.live is not None:
            masks = {lang: m & facets.live for lang, m in masks.items()}
        return cls(kind, path, opened.manifest, opened.bm25, facets, opened.dense, vocab[codes], masks,
                   opened.titles)

