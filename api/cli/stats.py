"""``pmatch stats``: record counts, facets and index versions of the workspace."""

from __future__ import annotations

from rich.table import Table

from api.cli.common import console, existing_workspace
from api.cli.options import HomeOpt
from matcher.snapshot import pending_writes
from matcher.store import COLLECTIONS


def stats(home: HomeOpt = None) -> None:
    """Record counts, facets, recent batches and index versions."""
    ws = existing_workspace(home)
    with ws.open_store() as store:
        table = Table(title=f"patent-match store {ws.store_path}", title_justify="left")
        table.add_column("what")
        table.add_column("value")
        table.add_row("data version", str(store.data_version))
        for k in COLLECTIONS:
            table.add_row(k, str(store.count(k)))
        for field in ("language", "kind", "applicant_type", "legal_status"):
            counts = store.facet_counts("patents", field, limit=6)
            table.add_row(f"patents by {field}", ", ".join(f"{v} {n}" for v, n in counts) or "-")
        for k in COLLECTIONS:
            manifest = ws.current_manifest(k)
            if manifest is None:
                table.add_row(f"{k} index", "[yellow]not built[/]")
            else:
                pending = pending_writes(store, manifest)
                stale = " [yellow](writes pending: `pmatch index build`)[/]" if pending else ""
                table.add_row(f"{k} index", f"{manifest.name}: {manifest.doc_count} docs, "
                                            f"built {manifest.built_at}{stale}")
                table.add_row(f"{k} segments", f"{len(manifest.segments)} "
                              f"({', '.join(str(seg.live_count) for seg in manifest.segments)} live), "
                              f"{manifest.deleted_count} deleted; newest searchable write "
                              f"{manifest.last_write_at or '-'}; full build {manifest.full_built_at}")
        console.print(table)
