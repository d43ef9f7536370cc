"""``pmatch match demand|patent|portfolio``: licensing matches both ways, and enterprises for a portfolio."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from api.cli.common import check_lang, console, existing_workspace, fail
from api.cli.options import CooperationOpt, HomeOpt, IndustryOpt, LangOpt, ModeOpt, OutOpt, RegionOpt, h
from api.cli.progress import StageProgress
from api.cli.render import (
    check_out,
    enterprises_table,
    legal_status,
    licence_terms,
    print_explanations,
    results_table,
    write_results,
)
from matcher.filters import DemandFilters, PatentFilters
from matcher.i18n import text
from matcher.matching import UnknownRecord, match_demand, match_patent, match_portfolio, portfolio_ids
from matcher.records import Demand, Patent
from matcher.results import Result
from matcher.search import NotIndexed, Searcher


def _demand_filters(industry: list[str], region: list[str], cooperation: list[str]) -> DemandFilters:
    return DemandFilters(industry=industry, region=region, cooperation_modes=cooperation)


RecordT = TypeVar("RecordT", Patent, Demand)


def _matched(home: Path | None, run: Callable[[Searcher], tuple[RecordT, list[Result]]],
             lang: str) -> tuple[RecordT, list[Result]]:
    """``run`` on a searcher over ``home``; a missing index or an unknown id is a clean CLI error."""
    searcher = Searcher(existing_workspace(home, lang))
    try:
        return run(searcher)
    except (NotIndexed, UnknownRecord) as exc:
        raise fail(exc.message(lang), 1, lang) from None
    finally:
        searcher.close()


def _print_match_json(key: str, record: Patent | Demand, results: list[Result]) -> None:
    print(json.dumps({key: record.model_dump(mode="json"), "results": [r.to_dict() for r in results]},
                     ensure_ascii=False))


def match_demand_cmd(
    demand_id: Annotated[str, typer.Argument(help=h("match.match_demand_cmd.demand_id"))],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    ipc: Annotated[list[str], typer.Option(help=h("match.match_demand_cmd.ipc"))] = [],  # noqa: B006
    mode: ModeOpt = None,
    explain: Annotated[bool, typer.Option("--explain")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    out: OutOpt = None,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Patents that answer a demand."""
    check_out(out, lang)
    demand, results = _matched(home, lambda searcher: match_demand(searcher, demand_id, k, PatentFilters(ipc=ipc),
                                                                    mode, explain), lang)  # type: ignore[arg-type]
    if out is not None:
        write_results(out, demand.title, results, {"demand_id": demand.id, "demand": demand.title}, lang)
    if as_json:
        _print_match_json("demand", demand, results)
        return
    console.print(f"[bold]{demand.id}[/] {demand.title}: {demand.description[:150]}", highlight=False)
    console.print(results_table(results, text("cli.match.patents_for", lang, id=demand.id), lang))
    print_explanations(results, lang)


def match_patent_cmd(
    patent_id: Annotated[str, typer.Argument(help=h("match.match_patent_cmd.patent_id"))],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    industry: IndustryOpt = [],  # noqa: B006
    region: RegionOpt = [],  # noqa: B006
    cooperation: CooperationOpt = [],  # noqa: B006
    mode: ModeOpt = None,
    explain: Annotated[bool, typer.Option("--explain")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    out: OutOpt = None,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Demands (enterprises) a patent could serve."""
    check_out(out, lang)
    filters = _demand_filters(industry, region, cooperation)
    patent, results = _matched(home, lambda searcher: match_patent(searcher, patent_id, k, filters, mode,
                                                                    explain), lang)  # type: ignore[arg-type]
    if out is not None:
        write_results(out, patent.title or patent.id, results, {"patent_id": patent.id, "patent": patent.title}, lang)
    if as_json:
        _print_match_json("patent", patent, results)
        return
    console.print(f"[bold]{patent.id}[/] {patent.title or patent.abstract[:80]} · {legal_status(patent, lang)} · "
                  f"{licence_terms(patent, lang)}", highlight=False)
    table = Table(title=text("cli.match.demands_for", lang, id=patent.id), title_justify="left")
    for col in ("#", "demand", "title", "industry", "licence", "score"):
        table.add_column(col if col == "#" else text(f"cli.col.{col}", lang))
    for r in results:
        d = r.record
        table.add_row(str(r.rank), r.id, d.title, getattr(d, "industry", None) or "", licence_terms(d, lang),
                      f"{r.score:.4f}")
    console.print(table)
    print_explanations(results, lang)


def match_portfolio_cmd(
    applicant: Annotated[str | None, typer.Option(help=h("match.match_portfolio_cmd.applicant"))] = None,
    ids: Annotated[Path | None, typer.Option(help=h("match.match_portfolio_cmd.ids"))] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    per_patent: Annotated[int, typer.Option(min=1, max=200, help=h("match.match_portfolio_cmd.per_patent"))] = 20,
    industry: IndustryOpt = [],  # noqa: B006
    region: RegionOpt = [],  # noqa: B006
    mode: ModeOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Enterprises whose demands fit a portfolio, with the patents behind each match."""
    check_lang(lang)
    if not applicant and not ids:
        raise fail(text("cli.error.portfolio", lang), 2, lang)
    id_list = None
    if ids:
        if not ids.is_file():
            raise fail(text("cli.error.no_file", lang, path=ids), 2, lang)
        id_list = [line.strip() for line in ids.read_text("utf-8").splitlines() if line.strip()]
    searcher = Searcher(existing_workspace(home, lang))
    try:
        patents = portfolio_ids(searcher, applicant, id_list)
        with StageProgress(lang) as bar:
            matches = match_portfolio(searcher, patents, k, per_patent, filters=_demand_filters(industry, region, []),
                                      mode=mode, progress=lambda done, total: bar.tick("match", done, total))  # type: ignore[arg-type]
    except (NotIndexed, UnknownRecord) as exc:
        raise fail(exc.message(lang), 1, lang) from None
    except ValueError as exc:
        raise fail(str(exc), 1, lang) from None
    finally:
        searcher.close()
    if as_json:
        print(json.dumps({"patents": patents, "enterprises": [m.to_dict() for m in matches]}, ensure_ascii=False))
        return
    console.print(enterprises_table(matches, text("cli.match.portfolio", lang, count=len(patents)), lang))
