"""Building the served indexes of one kind (patents or demands) from the store, as a new snapshot.

What is indexed: a patent's title, abstract and claims; a demand's title and description. Human keyphrases
(``Patent.keywords``) are stored but deliberately not indexed: the known-item evaluation uses them as queries.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexes.analyzer import AnalyzerConfig
from indexes.bm25 import BM25Index
from matcher.filters import DEMAND_FIELDS, PATENT_FIELDS, FacetIndex
from matcher.records import Demand, Patent
from matcher.store import Kind
from matcher.workspace import Workspace

SNAPSHOT_FORMAT = 1
Progress = Callable[[str, int, int], None]  # (stage, done, total)


def document_text(record: Patent | Demand) -> str:
    """The text BM25 indexes for a record."""
    if isinstance(record, Patent):
        return "\n".join(part for part in (record.title, record.abstract, record.claims) if part)
    return "\n".join(part for part in (record.title, record.description) if part)


class NothingToIndex(Exception):
    pass


def build_snapshot(
    workspace: Workspace, kind: Kind, analyzer: AnalyzerConfig | None = None, bm25_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build BM25 + facets for every stored record of ``kind`` into a new snapshot and publish it."""
    started = time.time()
    with workspace.open_store() as store:
        data_version = store.data_version
        records = list(store.iter_records(kind))
        if not records:
            raise NothingToIndex(f"no {kind} in {workspace.store_path}: ingest some first")
        root = workspace.index_root(kind)
        root.mkdir(parents=True, exist_ok=True)
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-v{data_version}-{time.time_ns() % 10**6:06d}"
        tmp = root / f".building-{name}"
        try:
            ids = [r.id for r in records]
            total = len(records)

            def tick(done: int) -> None:
                if progress:
                    progress("tokenize", done, total)

            bm25 = BM25Index.build(ids, [document_text(r) for r in records], analyzer, bm25_params, progress=tick)
            bm25.save(tmp / "bm25")
            FacetIndex.build(PATENT_FIELDS if kind == "patents" else DEMAND_FIELDS, records).save(tmp / "facets")
            manifest = {
                "format": "patent-match/snapshot", "format_version": SNAPSHOT_FORMAT, "kind": kind,
                "name": name, "data_version": data_version, "doc_count": total,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.time() - started, 2),
                "components": {"bm25": bm25.manifest},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
            final = root / name
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        workspace.publish(kind, final)
        store.record_index(kind, str(final), manifest)
    return final
