"""``pmatch stats``: record counts, facets and index versions of the workspace."""

from __future__ import annotations

from rich.table import Table

from api.cli.common import check_lang, console, existing_workspace
from api.cli.options import HomeOpt, LangOpt
from api.cli.render import field_label
from matcher.i18n import label, text
from matcher.snapshot import pending_writes
from matcher.store import COLLECTIONS


def stats(lang: LangOpt = "zh", home: HomeOpt = None) -> None:
    """Record counts, facets, recent batches and index versions."""
    check_lang(lang)
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        table = Table(title=text("cli.stats.title", lang, path=ws.store_path), title_justify="left")
        table.add_column(text("cli.stats.what", lang))
        table.add_column(text("cli.stats.value", lang))
        table.add_row(text("cli.stats.data_version", lang), str(store.data_version))
        for k in COLLECTIONS:
            table.add_row(text(f"cli.stats.count.{k}", lang), str(store.count(k)))
        for field in ("language", "kind", "applicant_type", "legal_status"):
            counts = store.facet_counts("patents", field, limit=6)
            table.add_row(text("cli.stats.facet", lang, field=field_label(field, lang)),
                          ", ".join(f"{_value(field, v, lang)} {n}" for v, n in counts) or "-")
        for k in COLLECTIONS:
            manifest = ws.current_manifest(k)
            what = text(f"cli.stats.count.{k}", lang)
            name = text("cli.stats.index", lang, kind=what)
            if manifest is None:
                table.add_row(name, f"[yellow]{text('cli.stats.not_built', lang)}[/]")
            else:
                pending = pending_writes(store, manifest)
                stale = f"[yellow]{text('cli.stats.pending', lang)}[/]" if pending else ""
                table.add_row(name, text("cli.stats.built", lang, name=manifest.name, docs=manifest.doc_count,
                                         at=manifest.built_at) + stale)
                table.add_row(text("cli.stats.segments_row", lang, kind=what), text(
                    "cli.stats.segments", lang, count=len(manifest.segments),
                    live=", ".join(str(seg.live_count) for seg in manifest.segments),
                    deleted=manifest.deleted_count, last=manifest.last_write_at or "-", full=manifest.full_built_at))
        console.print(table)


_VALUE_KEYS = {"legal_status": "export.legal", "applicant_type": "export.applicant"}


def _value(field: str, value: str, lang: str) -> str:
    """A facet value as the user reads it (a legal status or applicant type code in words)."""
    return label(f"{_VALUE_KEYS[field]}.{value}", lang, str(value)) if field in _VALUE_KEYS else str(value)
