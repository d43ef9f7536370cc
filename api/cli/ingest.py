"""``pmatch ingest``: load a file of records into the store, all rows or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import check_kind, check_lang, console, fail, parse_map
from api.cli.index import report_flush
from api.cli.options import HomeOpt, LangOpt, h
from matcher.config import load_config
from matcher.flush import update_snapshot
from matcher.i18n import text
from matcher.ingest import IngestError, ingest_file
from matcher.workspace import Workspace


def ingest(
    kind: Annotated[str, typer.Argument(help=h("ingest.ingest.kind"))],
    file: Annotated[Path, typer.Argument(help=h("ingest.ingest.file"))],
    map_: Annotated[list[str], typer.Option("--map", help=h("ingest.ingest.map_"))] = [],  # noqa: B006
    skip_invalid: Annotated[bool, typer.Option(help=h("ingest.ingest.skip_invalid"))] = False,
    rejects: Annotated[Path | None, typer.Option(help=h("ingest.ingest.rejects"))] = None,
    index: Annotated[bool, typer.Option("--index/--no-index", help=h("ingest.ingest.index"))] = True,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Load records into the store: all rows land, or none do (see --skip-invalid); then make them searchable."""
    check_lang(lang)
    k = check_kind(kind, lang)
    ws = Workspace(home)
    with ws.open_store() as store, console.status(text("cli.status.reading", lang, file=file)):
        try:
            report = ingest_file(store, file, k, parse_map(map_, lang), skip_invalid=skip_invalid,
                                 rejects_path=rejects, lang=lang)
        except IngestError as exc:
            raise fail(exc.text(lang), 1, lang) from None
    rejects_note = text("cli.ingest.see_rejects", lang, path=report.rejects_file) if report.rejects_file else ""
    console.print("[green]" + text("cli.ingest.done", lang, file=file, inserted=report.inserted,
                                   updated=report.updated, unchanged=report.unchanged,
                                   duplicates=len(report.duplicates), rejected=report.rejected) + "[/]" + rejects_note,
                  highlight=False)
    for doc_id, original in report.duplicates[:10]:
        console.print("  " + text("cli.ingest.duplicate", lang, id=doc_id, original=original), highlight=False)
    if len(report.duplicates) > 10:
        console.print("  " + text("cli.ingest.more_duplicates", lang, count=len(report.duplicates) - 10))
    for notice in report.normalised[:10]:
        console.print("  " + text("cli.ingest.normalised", lang, notice=notice), highlight=False)
    if not index or not (report.inserted or report.updated):
        return
    served = ws.current_manifest(k)
    if served is None:
        console.print(text("cli.index.none_yet", lang, kind=k), highlight=False)
        return
    # the served snapshot's own settings: a flush, never a surprise full rebuild with another model
    chars = served.dense.text_chars if served.dense else load_config(ws.home).dense_text_chars
    with console.status(text("cli.status.indexing", lang, kind=k)):
        result = update_snapshot(ws, k, dense_model=served.dense_model, dense_text_chars=chars)
    report_flush(k, result, lang)
