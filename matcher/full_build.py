"""The full build: every stored record of one collection into one new segment and snapshot (``build_snapshot``).

Full builds of a workspace queue behind each other on their own lock (``indexes/.full.lock``), whether the CLI or a
server's background rebuild started them. The build itself (tokenizing, embedding) runs outside the build lock, so
flushes go on publishing writes meanwhile; it takes that lock only to place its segment and publish, and then
publishes the new segment together with whatever was written during the build (a flush over it,
``matcher.flush.flush_over``), so no write a flush had made searchable disappears.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from indexes.analyzer import AnalyzerConfig
from matcher.flush import flush_over
from matcher.indexing import Progress, build_lock, place_segment, prepare_full, serve_snapshot, write_snapshot
from matcher.store import Collection
from matcher.workspace import Workspace


def build_snapshot(
    workspace: Workspace,
    kind: Collection,
    dense_model: str | None = None,
    dense_text_chars: int = 512,
    dense_index_type: str = "auto",
    analyzer: AnalyzerConfig | None = None,
    bm25_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    title_model: str | None = None,
) -> Path:
    """Build BM25 + facets (+ a dense index with ``dense_model``, + title vectors with ``title_model``) for every
    stored record of ``kind`` into one new segment and snapshot, then publish it atomically (with the writes made
    while it ran); returns the snapshot."""
    with build_lock(workspace, ".full.lock"):
        saved, segment, manifest = prepare_full(workspace, kind, dense_model, dense_text_chars, dense_index_type,
                                                analyzer, bm25_params, progress, title_model)
        try:
            with build_lock(workspace):
                place_segment(workspace, kind, saved, segment.name)
                folder = write_snapshot(workspace, kind, manifest, {})
                caught_up = flush_over(workspace, kind, folder, manifest, dense_model, dense_text_chars, analyzer,
                                       None, time.perf_counter())  # what was written while this build ran
                if caught_up.state == "published" and caught_up.snapshot is not None:
                    return caught_up.snapshot
                serve_snapshot(workspace, kind, folder)
                return folder
        finally:
            shutil.rmtree(saved, ignore_errors=True)  # gone once placed; what a failure before placing left
