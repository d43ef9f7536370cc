"""``pmatch shortlist`` (industrial-chain matchmaking shortlists) and ``pmatch push`` (portfolio push lists).

Registered on the main app in ``api/cli/main.py``. Exit codes: 0 done, 1 the run failed (no index, unknown applicant,
cannot write the output), 2 bad input (an invalid chain file, an option out of range, an unknown output format).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.cli.common import existing_workspace
from api.cli.engine import engine_error, engine_spec, print_report
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
)
from api.cli.progress import StageProgress
from matcher.batch import push_job, shortlist_job
from matcher.chains import ChainError, load_chain
from matcher.engine import EngineUnavailable
from matcher.export import output_format, push_table, shortlist_table, write
from matcher.filters import DemandFilters
from matcher.matching import UnknownRecord
from matcher.push import PushOptions
from matcher.search import NotIndexed, Searcher
from matcher.shortlist import ShortlistOptions

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _check_common(out: Path | None, lang: str, mode: str | None) -> None:
    if lang not in ("zh", "en"):
        raise _fail(f"--lang must be zh or en, not {lang!r}", 2)
    if mode is not None and mode not in ("bm25", "dense", "hybrid"):
        raise _fail(f"--mode must be bm25, dense or hybrid, not {mode!r}", 2)
    if out is not None:
        try:
            output_format(out)
        except ValueError as exc:
            raise _fail(str(exc), 2) from None


def _write(table: Any, out: Path, lang: str) -> None:
    try:
        write(table, out, lang)  # type: ignore[arg-type]
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    console.print(f"[green]wrote[/] {out}", highlight=False)


def shortlist(
    chain_file: Annotated[Path, typer.Argument(metavar="CHAIN.yaml", help="Chain definition (see data/chains/)")],
    per_demand: Annotated[int, typer.Option(min=1, max=100, help="Patents per demand at most")] = 5,
    per_patent: Annotated[int, typer.Option(min=1, max=100, help="Demands per patent at most")] = 3,
    per_holder: Annotated[int | None, typer.Option(min=1, help="Rows per patent holder (applicant) at most; a "
                                                                "patent with no applicant is its own holder")] = None,
    min_score: Annotated[float, typer.Option(min=0.0, help="Minimum pair score: the calibrated relevance with the "
                                                           "learned fusion, else the fused score (relative to the "
                                                           "demand: convex fusion gives its best candidate ~1)")] = 0.0,
    min_relevance: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum calibrated relevance of a pair "
                                                                        "(learned fusion; 0 turns it off)")]
    = ShortlistOptions.min_relevance or 0.0,
    min_similarity: Annotated[float, typer.Option(min=-1.0, max=1.0, help="Minimum dense cosine of a pair, for a "
                                                                          "ranker without a calibrated relevance "
                                                                          "(absolute; -1 turns it off)")]
    = ShortlistOptions.min_similarity or -1.0,
    min_coverage: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum share of the demand title's words "
                                                                       "in the patent, across languages through "
                                                                       "a dictionary gloss (0 turns it off)")]
    = ShortlistOptions.min_coverage or 0.0,
    min_topic_coverage: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum share of the patent title's "
                                                                             "words in the demand (same language; 0 "
                                                                             "turns it off)")]
    = ShortlistOptions.min_topic_coverage or 0.0,
    pair_model: Annotated[bool, typer.Option(help="Read every pair with the pair model fitted on judged "
                                                  "matchmaking pairs (its confidence is the pair score)")] = False,
    min_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Minimum pair confidence "
                                                         "(default: the model's own floor)")] = None,
    candidates: Annotated[int | None, typer.Option(min=1, max=1000, help="Patents scored per demand "
                                                                         "(default max(4 x per-demand, 20))")] = None,
    duplicate_similarity: Annotated[float, typer.Option(min=0.0, max=1.0, help="Cosine at which two patents are "
                                                                               "near-duplicates")] = 0.95,
    method: Annotated[str, typer.Option(help="exact (optimal under every cap) or greedy (>= 1/2 of it)")] = "exact",
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
        raise _fail(f"--method must be exact or greedy, not {method!r}", 2)
    try:
        chain = load_chain(chain_file)
    except ChainError as exc:
        raise _fail(str(exc), 2) from None
    options = ShortlistOptions(per_demand=per_demand, per_patent=per_patent, per_holder=per_holder,
                               min_score=min_score, min_similarity=min_similarity if min_similarity > -1 else None,
                               min_coverage=min_coverage or None, min_relevance=min_relevance or None,
                               min_topic_coverage=min_topic_coverage or None, candidates=candidates,
                               duplicate_similarity=duplicate_similarity, method=method,  # type: ignore[arg-type]
                               mode=mode, explain=explain, pair_model=pair_model,  # type: ignore[arg-type]
                               min_confidence=min_confidence)
    searcher = Searcher(existing_workspace(home))
    try:
        with StageProgress(lang) as bar:
            result, report = shortlist_job(searcher, chain, options, spec, bar.tick)
    except NotIndexed as exc:
        raise _fail(str(exc)) from None
    except EngineUnavailable as exc:
        raise _fail(engine_error(exc, lang)) from None
    finally:
        searcher.close()
    s = result.summary
    table = Table(title=f"{chain.name}: {s['rows']} rows, {s['demands_served']}/{s['demands_selected']} demands "
                        f"served, {s['distinct_patents']}/{s['patents_selected']} patents used "
                        f"({s['timings']['total_s']:.1f} s)", title_justify="left")
    for col in ("segment", "patents", "demands", "pairs scored", "rows", "demands served"):
        table.add_column(col)
    for seg in s["segments"]:
        table.add_row(seg["name"] if lang == "zh" else seg["name_en"], str(seg["patents"]), str(seg["demands"]),
                      str(seg["candidate_pairs"]), str(seg["rows"]), str(seg["demands_served"]))
    console.print(table)
    print_report(report, lang)
    if s["greedy_total_score"] is not None:
        console.print(f"total score {s['total_score']:.4f} (exact optimum; greedy would give "
                      f"{s['greedy_total_score']:.4f})", highlight=False)
    for warning in s["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if out is not None:
        _write(shortlist_table(result, lang), out, lang)  # type: ignore[arg-type]
    else:
        _print_rows(result.rows[:10])


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        console.print(f"[bold]{r['segment']}[/] #{r['rank']} {r['demand_id']} {r['demand_title']} -> "
                      f"{r['patent_id']} {r['patent_title'][:50]}  score {r['score']:.4f}", highlight=False)
        if r.get("shared_terms"):
            console.print(f"  shared terms: {r['shared_terms']}", highlight=False)
        if r.get("closest_sentence"):
            console.print(f"  closest sentence ({r['closest_similarity']}): {r['closest_sentence'][:120]}",
                          highlight=False)


def push(
    applicant: Annotated[str | None, typer.Option(help="Every patent of this applicant (part of the name)")] = None,
    ids: Annotated[Path | None, typer.Option(help="A file of patent ids, one per line")] = None,
    per_enterprise: Annotated[int, typer.Option(min=1, max=100, help="Demands per enterprise, and patents per "
                                                                     "demand, at most")] = 5,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=10_000, help="Enterprises")] = 20,
    per_patent: Annotated[int, typer.Option(min=1, max=200, help="Demands fetched per patent")] = 20,
    reciprocal_k: Annotated[int, typer.Option(min=0, max=200, help="Push a pair only if the demand's own search of "
                                              "all patents ranks the patent in its top K (0: off)")]
    = PushOptions.reciprocal_k or 0,
    pair_model: Annotated[bool, typer.Option(help="Read every pair with the pair model fitted on judged "
                                                  "matchmaking pairs (its confidence is the pair score)")] = False,
    min_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Minimum pair confidence "
                                                         "(default: the model's own floor)")] = None,
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
        raise _fail("give either --applicant NAME or --ids FILE", 2)
    id_list = None
    if ids is not None:
        if not ids.is_file():
            raise _fail(f"{ids}: no such file", 2)
        id_list = [line.strip() for line in ids.read_text("utf-8").splitlines() if line.strip()]
        if not id_list:
            raise _fail(f"{ids}: no patent ids in the file", 2)
    options = PushOptions(k=k, per_enterprise=per_enterprise, per_patent=per_patent, mode=mode,  # type: ignore[arg-type]
                          filters=DemandFilters(industry=industry, region=region, cooperation_modes=cooperation),
                          explain=explain, reciprocal_k=reciprocal_k or None, pair_model=pair_model,
                          min_confidence=min_confidence)
    searcher = Searcher(existing_workspace(home))
    started = time.perf_counter()
    try:
        with StageProgress(lang) as bar:
            result, report = push_job(searcher, applicant, id_list, options, spec, bar.tick)
    except (NotIndexed, UnknownRecord) as exc:
        raise _fail(str(exc)) from None
    except EngineUnavailable as exc:
        raise _fail(engine_error(exc, lang)) from None
    finally:
        searcher.close()
    table = Table(title=f"push for {result.label}: {len(result.enterprises)} enterprises, {len(result.rows)} rows "
                        f"({time.perf_counter() - started:.1f} s)", title_justify="left")
    for col in ("#", "enterprise", "score", "best demand", "supporting patents"):
        table.add_column(col)
    for i, m in enumerate(result.enterprises, 1):
        best = m.demands[0]
        table.add_row(str(i), m.enterprise, f"{m.score:.4f}", f"{best['demand_id']} {best['title']}",
                      ", ".join(p["patent_id"] for p in best["patents"][:3]))
    console.print(table)
    print_report(report, lang)
    if out is not None:
        _write(push_table(result, lang), out, lang)  # type: ignore[arg-type]
