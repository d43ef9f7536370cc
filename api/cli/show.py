"""``pmatch show``: one stored record, every field, with what patent-match derived or inferred marked."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import check_kind, console, existing_workspace, fail
from api.cli.options import HomeOpt


def show(
    record_id: Annotated[str, typer.Argument(help="A stored patent's or demand's id")],
    kind: Annotated[str, typer.Option(help="patents or demands")] = "patents",
    as_json: Annotated[bool, typer.Option("--json", help="The record as JSON")] = False,
    home: HomeOpt = None,
) -> None:
    """Show a stored record; values patent-match derived say by which rule, and guesses say so."""
    k = check_kind(kind)
    with existing_workspace(home).open_store() as store:
        record = store.get(k, record_id)
    if record is None:
        raise fail(f"no {k[:-1]} {record_id!r} in the store")
    if as_json:
        print(json.dumps(record.model_dump(mode="json"), ensure_ascii=False))
        return
    derived = getattr(record, "derived", {})
    inferred = getattr(record, "inferred", [])
    table = Table(title=f"{k[:-1]} {record.id}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_column("how", style="dim")
    for field, value in record.model_dump(mode="json").items():
        if field in ("derived", "inferred") or value in (None, "", [], {}):
            continue
        how = ""
        if field in derived:
            how = ("inferred" if field in inferred else "derived") + f" ({derived[field]})"
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        table.add_row(field, shown if len(shown) <= 600 else shown[:600] + "…", how)
    console.print(table)
