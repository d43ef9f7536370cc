"""``pmatch ingest``: load a file of records into the store, all rows or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import check_kind, console, fail, parse_map
from api.cli.options import HomeOpt
from matcher.ingest import IngestError, ingest_file
from matcher.workspace import Workspace


def ingest(
    kind: Annotated[str, typer.Argument(help="patents or demands")],
    file: Annotated[Path, typer.Argument(help="JSONL, JSON, CSV (UTF-8 or GB18030) or XLSX")],
    map_: Annotated[list[str], typer.Option("--map", help="COLUMN=field for a foreign header; COLUMN= ignores")] = [],  # noqa: B006
    skip_invalid: Annotated[bool, typer.Option(help="Write bad rows to a rejects file and load the rest.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Where --skip-invalid writes bad rows.")] = None,
    home: HomeOpt = None,
) -> None:
    """Load records into the store: all rows land, or none do (see --skip-invalid)."""
    k = check_kind(kind)
    ws = Workspace(home)
    with ws.open_store() as store, console.status(f"reading {file} ..."):
        try:
            report = ingest_file(store, file, k, parse_map(map_), skip_invalid=skip_invalid, rejects_path=rejects)
        except IngestError as exc:
            raise fail(str(exc)) from None
    console.print(
        f"[green]ingested[/] {file}: {report.inserted} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.duplicates)} exact duplicates skipped, {report.rejected} rejected"
        + (f" (see {report.rejects_file})" if report.rejects_file else "")
    )
    for doc_id, original in report.duplicates[:10]:
        console.print(f"  duplicate: {doc_id} has the same title and text as {original}", highlight=False)
    if len(report.duplicates) > 10:
        console.print(f"  ... and {len(report.duplicates) - 10} more duplicates")
