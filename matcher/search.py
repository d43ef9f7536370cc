"""Searching the served snapshot: free text -> patents or demands, with filters.

``Searcher`` opens the workspace's current snapshots (and re-opens them when a newer one is published),
turns filters into masks, runs the retriever, and joins hits with their stored records.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexes.bm25 import BM25Index
from matcher.filters import DemandFilters, FacetIndex, PatentFilters
from matcher.records import Demand, Patent
from matcher.store import Kind
from matcher.workspace import Workspace


class NotIndexed(Exception):
    pass


@dataclass
class Snapshot:
    """One published, immutable set of indexes for one kind."""

    kind: Kind
    path: Path
    manifest: dict[str, Any]
    bm25: BM25Index
    facets: FacetIndex

    @classmethod
    def open(cls, kind: Kind, path: Path) -> Snapshot:
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        return cls(kind, path, manifest, BM25Index.load(path / "bm25"), FacetIndex.load(path / "facets"))


@dataclass
class Result:
    id: str
    rank: int
    score: float
    record: Patent | Demand


class Searcher:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
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

    def search_patents(self, query: str, k: int = 10, filters: PatentFilters | None = None) -> list[Result]:
        snap = self.snapshot("patents")
        mask = snap.facets.patent_mask(filters or PatentFilters())
        return self._bm25(snap, query, k, mask)

    def search_demands(self, query: str, k: int = 10, filters: DemandFilters | None = None) -> list[Result]:
        snap = self.snapshot("demands")
        mask = snap.facets.demand_mask(filters or DemandFilters())
        return self._bm25(snap, query, k, mask)

    def _bm25(self, snap: Snapshot, query: str, k: int, mask: np.ndarray) -> list[Result]:
        hits = snap.bm25.search(query, k, allowed=None if mask.all() else mask)
        records = self.store.get_many(snap.kind, [h.id for h in hits])
        return [Result(h.id, i, h.score, records[h.id]) for i, h in enumerate(hits, 1) if h.id in records]
