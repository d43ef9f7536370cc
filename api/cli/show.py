"""``pmatch show patent ID`` / ``pmatch show demand ID``: one record, every field, its licence terms, and its
best matches (the demands a patent could serve, the patents that answer a demand). A value patent-match derived
from the record (a kind code, a filing year, an applicant type guessed from a name) says so, with its rule."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import check_lang, console, existing_workspace, fail
from api.cli.options import HomeOpt, LangOpt, ModeOpt, h
from api.cli.render import field_label, licence_terms, results_table
from matcher.i18n import text
from matcher.matching import UnknownRecord, match_demand, match_patent
from matcher.records import Patent
from matcher.search import NotIndexed, Searcher

KindArg = Annotated[str, typer.Argument(help=h("show.KindArg"))]


def show(
    kind: KindArg,
    record_id: Annotated[str, typer.Argument(help=h("show.show.record_id"))],
    k: Annotated[int, typer.Option("--k", "-k", min=0, max=100, help=h("show.show.k"))] = 5,
    mode: ModeOpt = None,
    lang: LangOpt = "zh",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    home: HomeOpt = None,
) -> None:
    """Show one patent or demand: every field, its licence terms, and its best matches."""
    check_lang(lang)
    if kind not in ("patent", "demand"):
        raise fail(text("cli.error.show_kind", lang, value=repr(kind)), 2, lang)
    collection = "patents" if kind == "patent" else "demands"
    what = text(f"cli.show.{kind}", lang)
    searcher = Searcher(existing_workspace(home, lang))
    try:
        canonical = searcher.store.resolve(collection, record_id)
        record = searcher.store.get(collection, canonical) if canonical else None
        if record is None:
            raise fail(text("cli.show.unknown", lang, id=record_id, what=what), 1, lang)
        results = []
        if k:
            try:
                if isinstance(record, Patent):
                    results = match_patent(searcher, record.id, k, mode=mode)[1]  # type: ignore[arg-type]
                else:
                    results = match_demand(searcher, record, k, mode=mode)[1]  # type: ignore[arg-type]
            except NotIndexed as exc:
                raise fail(exc.message(lang), 1, lang) from None
    except UnknownRecord as exc:
        raise fail(exc.message(lang), 1, lang) from None
    finally:
        searcher.close()
    if as_json:
        print(json.dumps({kind: record.model_dump(mode="json"), "licence_terms": licence_terms(record, lang),
                          "matches": [r.to_dict() for r in results]}, ensure_ascii=False))
        return
    table = Table(title=f"{what} {record.id}", title_justify="left", show_header=True)
    table.add_column(text("cli.show.field", lang), no_wrap=True)
    table.add_column(text("cli.show.value", lang))
    derived = getattr(record, "derived", {})
    inferred = getattr(record, "inferred", [])
    for field, value in record.model_dump(mode="json").items():
        if field in ("derived", "inferred"):
            continue
        how = ""
        if field in derived:
            how = text("filters.marked_inferred" if field in inferred else "filters.marked_derived", lang,
                       rule=derived[field])
        if field == "legal_status" and value:
            value = text(f"export.legal.{value}", lang)
        elif value in (None, "", []):
            value = text("common.not_provided", lang)
        elif isinstance(value, list):
            value = "、".join(map(str, value))
        elif isinstance(value, bool):
            value = text("common.yes" if value else "common.no", lang)
        table.add_row(field_label(field, lang), (str(value) + how).replace("[", "\\["))
    table.add_row(text("cli.show.licence", lang), licence_terms(record, lang), style="bold")
    console.print(table)
    if k:
        other = text("cli.show.demands" if isinstance(record, Patent) else "cli.show.patents", lang)
        if results:
            console.print(results_table(results, text("cli.show.best_matches", lang, what=other, k=k), lang))
        else:
            console.print(text("cli.show.none", lang))
