"""``pmatch search``: patents by free text (Chinese or English), with filters."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from api.cli.common import check_mode, check_query, console, err, existing_workspace, fail
from api.cli.options import HomeOpt, LangOpt, OutOpt, h
from api.cli.render import check_out, print_explanations, results_table, write_results
from matcher.filters import PatentFilters
from matcher.i18n import text
from matcher.reasons import reason
from matcher.search import MinScoreError, NotIndexed, Searcher
from matcher.snapshot import pending_writes
from matcher.store import Collection


def search(
    query: Annotated[str, typer.Argument(help=h("search.search.query"))],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    ipc: Annotated[list[str], typer.Option(help=h("search.search.ipc"))] = [],  # noqa: B006
    applicant_type: Annotated[list[str], typer.Option(help=h("search.search.applicant_type"))] = [],  # noqa: B006
    applicant: Annotated[str | None, typer.Option(help=h("search.search.applicant"))] = None,
    legal_status: Annotated[list[str], typer.Option(help=h("search.search.legal_status"))]
    = [],  # noqa: B006
    open_licence: Annotated[bool, typer.Option("--open-licence", help=h("search.search.open_licence"))] = False,
    date_from: Annotated[str | None, typer.Option("--from", help=h("search.search.date_from"))] = None,
    date_to: Annotated[str | None, typer.Option("--to", help=h("search.search.date_to"))] = None,
    maturity: Annotated[list[str], typer.Option(help=h("search.search.maturity"))] = [],  # noqa: B006
    kind: Annotated[list[str], typer.Option(help=h("search.search.kind"))] = [],  # noqa: B006
    language: Annotated[list[str], typer.Option(help=h("search.search.language"))] = [],  # noqa: B006
    patent_type: Annotated[list[str], typer.Option(help=h("search.search.patent_type"))] = [],  # noqa: B006
    granted: Annotated[bool, typer.Option("--granted", help=h("search.search.granted"))] = False,
    inferred: Annotated[bool, typer.Option("--inferred/--no-inferred", help=h("search.search.inferred"))]
    = True,
    mode: Annotated[str | None, typer.Option(help=h("search.search.mode"))] = None,
    explain: Annotated[bool, typer.Option("--explain", help=h("search.search.explain"))] = False,
    min_score: Annotated[float | None, typer.Option("--min-score", min=0.0, max=1.0,
                                                    help=h("search.search.min_score"))] = None,
    as_json: Annotated[bool, typer.Option("--json", help=h("search.search.as_json"))] = False,
    out: OutOpt = None,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Search patents by free text (Chinese or English), with filters."""
    check_out(out, lang)
    check_query(query, lang)
    check_mode(mode, lang)
    try:
        filters = PatentFilters(
            ipc=ipc, applicant_type=applicant_type, applicant=applicant, legal_status=legal_status or None,
            open_licence_only=open_licence, date_from=date.fromisoformat(date_from) if date_from else None,
            date_to=date.fromisoformat(date_to) if date_to else None, maturity=maturity, kind=kind, language=language,
            patent_type=patent_type, granted_only=granted, include_inferred=inferred,
        )
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {reason(e).text(lang)}" for e in exc.errors())
        raise fail(text("cli.error.filter", lang, detail=detail), 2, lang) from None
    except ValueError as exc:  # a date that is not YYYY-MM-DD
        raise fail(text("cli.error.filter", lang, detail=exc), 2, lang) from None
    searcher = Searcher(existing_workspace(home, lang))
    try:
        started = time.perf_counter()
        results = searcher.search_patents(query, k, filters, mode, explain,  # type: ignore[arg-type]
                                          min_score=min_score)
        elapsed = time.perf_counter() - started
        short = searcher.patent_filter_report(filters, len(results), k) if len(results) < k else None
        stale = _stale(searcher, "patents")
    except NotIndexed as exc:
        raise fail(exc.message(lang), 1, lang) from None
    except MinScoreError as exc:
        raise fail(exc.message(lang), 2, lang) from None
    except ValueError as exc:
        raise fail(str(exc), 2, lang) from None
    finally:
        searcher.close()
    if stale:
        err.print(text("cli.index.stale", lang, kind="patents"), highlight=False, markup=False)
    if out is not None:
        write_results(out, query, results, {"query": query, "mode": mode or searcher.config.mode,
                                            "filters": filters.model_dump_json(exclude_defaults=True)}, lang)
    if as_json:
        payload = {"query": query, "results": [r.to_dict() for r in results]}
        if short is not None:
            payload["filter_report"] = short.to_dict()
        print(json.dumps(payload, ensure_ascii=False))
        return
    if not results and short is None:
        console.print(text("cli.search.none", lang, query=query), highlight=False, markup=False)
        return
    if results:
        used = mode or searcher.config.mode
        console.print(results_table(results, text("cli.search.title", lang, query=escape(query), mode=used,
                                                  count=len(results), ms=f"{elapsed * 1000:.0f}"), lang))
        print_explanations(results, lang)
    if short is not None:
        for line in short.lines(lang):
            console.print(line, highlight=False, markup=False)


def _stale(searcher: Searcher, kind: Collection) -> bool:
    """Whether the store changed since the served snapshot of ``kind`` (writes not searchable yet)."""
    manifest = searcher.workspace.current_manifest(kind)
    return manifest is not None and pending_writes(searcher.store, manifest)
