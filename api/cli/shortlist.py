"""``pmatch shortlist`` (industrial-chain matchmaking shortlists) and ``pmatch push`` (portfolio push lists).

Registered on the main app in ``api/cli/main.py``. Exit codes: 0 done, 1 the run failed (no index, unknown applicant,
cannot write the output), 2 bad input (an invalid chain file, an option out of range, an unknown output format).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from api.cli.common import check_lang, check_mode, console, existing_workspace, fail, warn
from api.cli.engine import engine_spec, print_report
from api.cli.options import (
    AddressOpt,
    CooperationOpt,
    EngineOpt,
    ExplainRowsOpt,
    HomeOpt,
    IndustryOpt,
    LangOpt,
    ModeOpt,
    OutOpt,
    RegionOpt,
    WorkersOpt,
    h,
)
from api.cli.progress import StageProgress
from api.cli.render import enterprises_table
from matcher.batch import push_job, shortlist_job
from matcher.chains import ChainError, load_chain
from matcher.engine import EngineUnavailable
from matcher.export import UnknownFormat, output_format, push_table, shortlist_table, write
from matcher.filters import DemandFilters
from matcher.i18n import Message, text
from matcher.matching import UnknownRecord
from matcher.push import PushOptions
from matcher.search import NotIndexed, Searcher
from matcher.shortlist import ShortlistOptions


def _check_common(out: Path | None, lang: str, mode: str | None) -> None:
    check_lang(lang)
    check_mode(mode, lang)
    if out is not None:
        try:
            output_format(out)
        except UnknownFormat as exc:
            raise fail(exc.message(lang), 2, lang) from None


def _write(table: Any, out: Path, lang: str) -> None:
    try:
        write(table, out, lang)  # type: ignore[arg-type]
    except OSError as exc:
        raise fail(text("cli.error.cannot_write", lang, path=out, reason=exc.strerror or exc), 1, lang) from None
    console.print(f"[green]{text('cli.wrote', lang, path=out)}[/]", highlight=False)


def shortlist(
    chain_file: Annotated[Path, typer.Argument(metavar="CHAIN.yaml", help=h("shortlist.shortlist.chain_file"))],
    per_demand: Annotated[int, typer.Option(min=1, max=100, help=h("shortlist.shortlist.per_demand"))] = 5,
    per_patent: Annotated[int, typer.Option(min=1, max=100, help=h("shortlist.shortlist.per_patent"))] = 3,
    per_holder: Annotated[int | None, typer.Option(min=1, help=h("shortlist.shortlist.per_holder"))] = None,
    min_score: Annotated[float, typer.Option(min=0.0, help=h("shortlist.shortlist.min_score"))] = 0.0,
    min_relevance: Annotated[float, typer.Option(min=0.0, max=1.0, help=h("shortlist.shortlist.min_relevance"))]
    = ShortlistOptions.min_relevance or 0.0,
    min_similarity: Annotated[float, typer.Option(min=-1.0, max=1.0, help=h("shortlist.shortlist.min_similarity"))]
    = ShortlistOptions.min_similarity or -1.0,
    min_coverage: Annotated[float, typer.Option(min=0.0, max=1.0, help=h("shortlist.shortlist.min_coverage"))]
    = ShortlistOptions.min_coverage or 0.0,
    min_topic_coverage: Annotated[float, typer.Option(min=0.0, max=1.0,
                                                      help=h("shortlist.shortlist.min_topic_coverage"))]
    = ShortlistOptions.min_topic_coverage or 0.0,
    pair_model: Annotated[bool, typer.Option(help=h("shortlist.shortlist.pair_model"))] = False,
    title_channel: Annotated[bool, typer.Option(help=h("shortlist.shortlist.title_channel"))] = False,
    min_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0,
                                                         help=h("shortlist.shortlist.min_confidence"))] = None,
    candidates: Annotated[int | None, typer.Option(min=1, max=1000, help=h("shortlist.shortlist.candidates"))] = None,
    duplicate_similarity: Annotated[float, typer.Option(min=0.0, max=1.0,
                                                        help=h("shortlist.shortlist.duplicate_similarity"))] = 0.95,
    method: Annotated[str, typer.Option(help=h("shortlist.shortlist.method"))] = "exact",
    mode: ModeOpt = None,
    explain: ExplainRowsOpt = True,
    out: OutOpt = None,
    lang: LangOpt = "zh",
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    home: HomeOpt = None,
) -> None:
    """Matchmaking shortlist for an industrial-chain event: demands x patents per segment, under caps. The demands
    are scored in partitions (on this machine, or on Ray with --engine ray); a killed run started again with the
    same arguments resumes where it stopped."""
    _check_common(out, lang, mode)
    spec = engine_spec(engine, address, workers, lang)
    if method not in ("exact", "greedy"):
        raise fail(text("cli.error.method", lang, value=repr(method)), 2, lang)
    try:
        chain = load_chain(chain_file)
    except ChainError as exc:
        raise fail(exc.message(lang), 2, lang) from None
    options = ShortlistOptions(per_demand=per_demand, per_patent=per_patent, per_holder=per_holder,
                               min_score=min_score, min_similarity=min_similarity if min_similarity > -1 else None,
                               min_coverage=min_coverage or None, min_relevance=min_relevance or None,
                               min_topic_coverage=min_topic_coverage or None, candidates=candidates,
                               duplicate_similarity=duplicate_similarity, method=method,  # type: ignore[arg-type]
                               mode=mode, explain=explain, pair_model=pair_model,  # type: ignore[arg-type]
                               title_channel=title_channel,
                               min_confidence=min_confidence)
    searcher = Searcher(existing_workspace(home, lang))
    try:
        with StageProgress(lang) as bar:
            result, report = shortlist_job(searcher, chain, options, spec, bar.tick)
    except NotIndexed as exc:
        raise fail(exc.message(lang), 1, lang) from None
    except EngineUnavailable as exc:
        raise fail(exc.message(lang), 1, lang) from None
    finally:
        searcher.close()
    s = result.summary
    table = Table(title=text("cli.shortlist.title", lang, chain=chain.name, rows=s["rows"],
                             served=s["demands_served"], selected=s["demands_selected"],
                             used=s["distinct_patents"], patents=s["patents_selected"],
                             seconds=f"{s['timings']['total_s']:.1f}"), title_justify="left")
    for col in ("segment", "patents", "demands", "pairs", "rows", "served"):
        table.add_column(text(f"cli.col.{col}", lang))
    for seg in s["segments"]:
        table.add_row(seg["name"] if lang == "zh" else seg["name_en"], str(seg["patents"]), str(seg["demands"]),
                      str(seg["candidate_pairs"]), str(seg["rows"]), str(seg["demands_served"]))
    console.print(table)
    print_report(report, lang)
    if s["greedy_total_score"] is not None:
        console.print(text("cli.shortlist.total", lang, total=f"{s['total_score']:.4f}",
                           greedy=f"{s['greedy_total_score']:.4f}"), highlight=False)
    for warning in s["warning_messages"]:
        warn(Message.from_dict(warning).text(lang), lang)
    if out is not None:
        _write(shortlist_table(result, lang), out, lang)  # type: ignore[arg-type]
    else:
        _print_rows(result.rows[:10], lang)


def _print_rows(rows: list[dict[str, Any]], lang: str) -> None:
    for r in rows:
        console.print(f"[bold]{escape(r['segment'])}[/] #{r['rank']} {r['demand_id']} {escape(r['demand_title'])} -> "
                      f"{r['patent_id']} {escape(r['patent_title'][:50])}  "
                      + text("cli.shortlist.row", lang, score=f"{r['score']:.4f}"), highlight=False)
        if r.get("shared_terms"):
            console.print(text("cli.explain.terms", lang, terms=escape(r["shared_terms"])), highlight=False)
        if r.get("closest_sentence"):
            console.print(text("cli.explain.sentence", lang, similarity=r["closest_similarity"],
                               text=escape(r["closest_sentence"][:120])), highlight=False)


def push(
    applicant: Annotated[str | None, typer.Option(help=h("shortlist.push.applicant"))] = None,
    ids: Annotated[Path | None, typer.Option(help=h("shortlist.push.ids"))] = None,
    per_enterprise: Annotated[int, typer.Option(min=1, max=100, help=h("shortlist.push.per_enterprise"))] = 5,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=10_000, help=h("shortlist.push.k"))] = 20,
    per_patent: Annotated[int, typer.Option(min=1, max=200, help=h("shortlist.push.per_patent"))] = 20,
    reciprocal_k: Annotated[int, typer.Option(min=0, max=200, help=h("shortlist.push.reciprocal_k"))]
    = PushOptions.reciprocal_k or 0,
    pair_model: Annotated[bool, typer.Option(help=h("shortlist.push.pair_model"))] = False,
    min_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0,
                                                         help=h("shortlist.push.min_confidence"))] = None,
    industry: IndustryOpt = [],  # noqa: B006
    region: RegionOpt = [],  # noqa: B006
    cooperation: CooperationOpt = [],  # noqa: B006
    mode: ModeOpt = None,
    explain: ExplainRowsOpt = True,
    out: OutOpt = None,
    lang: LangOpt = "zh",
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    home: HomeOpt = None,
) -> None:
    """Portfolio push: the enterprises and demands to approach for a portfolio, with the patents behind each (the
    portfolio's patents matched in partitions, on this machine or on Ray with --engine ray; resumable)."""
    _check_common(out, lang, mode)
    spec = engine_spec(engine, address, workers, lang)
    if bool(applicant) == bool(ids):
        raise fail(text("cli.error.portfolio", lang), 2, lang)
    id_list = None
    if ids is not None:
        if not ids.is_file():
            raise fail(text("cli.error.no_file", lang, path=ids), 2, lang)
        id_list = [line.strip() for line in ids.read_text("utf-8").splitlines() if line.strip()]
        if not id_list:
            raise fail(text("cli.error.no_ids", lang, path=ids), 2, lang)
    options = PushOptions(k=k, per_enterprise=per_enterprise, per_patent=per_patent, mode=mode,  # type: ignore[arg-type]
                          filters=DemandFilters(industry=industry, region=region, cooperation_modes=cooperation),
                          explain=explain, reciprocal_k=reciprocal_k or None, pair_model=pair_model,
                          min_confidence=min_confidence)
    searcher = Searcher(existing_workspace(home, lang))
    started = time.perf_counter()
    try:
        with StageProgress(lang) as bar:
            result, report = push_job(searcher, applicant, id_list, options, spec, bar.tick)
    except (NotIndexed, UnknownRecord) as exc:
        raise fail(exc.message(lang), 1, lang) from None
    except EngineUnavailable as exc:
        raise fail(exc.message(lang), 1, lang) from None
    finally:
        searcher.close()
    console.print(enterprises_table(result.enterprises, text(
        "cli.push.title", lang, label=result.label, enterprises=len(result.enterprises), rows=len(result.rows),
        seconds=f"{time.perf_counter() - started:.1f}"), lang))
    print_report(report, lang)
    if out is not None:
        _write(push_table(result, lang), out, lang)  # type: ignore[arg-type]
