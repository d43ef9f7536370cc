"""The ``pmatch`` command line: ingest, index, search, match, stats, and the bundled-data demo."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.options import CooperationOpt, HomeOpt, IndustryOpt, ModeOpt, RegionOpt
from api.shortlist_cli import register as register_shortlist_commands
from matcher.config import load_config
from matcher.filters import DemandFilters, PatentFilters
from matcher.indexing import NothingToIndex, build_snapshot
from matcher.ingest import IngestError, ingest_file
from matcher.matching import UnknownRecord, match_demand, match_patent, match_portfolio, portfolio_ids
from matcher.records import Demand, Patent
from matcher.search import NotIndexed, Result, Searcher
from matcher.store import KINDS, Kind
from matcher.workspace import Workspace

app = typer.Typer(help="patent-match: bilingual patent supply-demand matching.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
index_app = typer.Typer(help="Build the search indexes from the store.", no_args_is_help=True)
app.add_typer(index_app, name="index")
match_app = typer.Typer(help="Licensing matches: demand -> patents, patent -> demands, portfolio -> enterprises.",
                        no_args_is_help=True)
app.add_typer(match_app, name="match")
eval_app = typer.Typer(help="Offline evaluation on labeled sets in the BEIR layout.")
app.add_typer(eval_app, name="eval")
keys_app = typer.Typer(help="API keys for the HTTP service's write endpoints.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SAMPLE_DIR = DATA_DIR / "sample"
VECTORS_DIR = DATA_DIR / "vectors"
MODES = ("bm25", "dense", "hybrid")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _kind(value: str) -> Kind:
    if value not in KINDS:
        raise _fail(f"kind must be one of {', '.join(KINDS)}, not {value!r}", 2)
    return value  # type: ignore[return-value]


def _parse_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise _fail(f"--map takes COLUMN=field (or COLUMN= to ignore), not {pair!r}", 2)
        column, field = pair.split("=", 1)
        mapping[column.strip()] = field.strip()
    return mapping


@app.command()
def ingest(
    kind: Annotated[str, typer.Argument(help="patents or demands")],
    file: Annotated[Path, typer.Argument(help="JSONL, JSON, CSV (UTF-8 or GB18030) or XLSX")],
    map_: Annotated[list[str], typer.Option("--map", help="COLUMN=field for a foreign header; COLUMN= ignores")] = [],  # noqa: B006
    skip_invalid: Annotated[bool, typer.Option(help="Write bad rows to a rejects file and load the rest.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="Where --skip-invalid writes bad rows.")] = None,
    home: HomeOpt = None,
) -> None:
    """Load records into the store: all rows land, or none do (see --skip-invalid)."""
    k = _kind(kind)
    ws = Workspace(home)
    with ws.open_store() as store, console.status(f"reading {file} ..."):
        try:
            report = ingest_file(store, file, k, _parse_map(map_), skip_invalid=skip_invalid, rejects_path=rejects)
        except IngestError as exc:
            raise _fail(str(exc)) from None
    console.print(
        f"[green]ingested[/] {file}: {report.inserted} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.duplicates)} exact duplicates skipped, {report.rejected} rejected"
        + (f" (see {report.rejects_file})" if report.rejects_file else "")
    )
    for doc_id, original in report.duplicates[:10]:
        console.print(f"  duplicate: {doc_id} has the same title and text as {original}", highlight=False)
    if len(report.duplicates) > 10:
        console.print(f"  ... and {len(report.duplicates) - 10} more duplicates")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


@index_app.command("build")
def index_build(
    kind: Annotated[str, typer.Option(help="patents, demands or all")] = "all",
    dense_model: Annotated[str | None, typer.Option(help="Embedding model for the dense index (default: the "
                                                         "ranker config's); 'none' builds BM25 only")] = None,
    home: HomeOpt = None,
) -> None:
    """Build BM25, dense and filter indexes as a new snapshot and switch searches to it atomically."""
    ws = Workspace(home)
    kinds: list[Kind] = list(KINDS) if kind == "all" else [_kind(kind)]
    config = load_config(ws.home)
    model = config.dense_model if dense_model is None else (None if dense_model == "none" else dense_model)
    for k in kinds:
        with _progress() as bar:
            task = bar.add_task(f"indexing {k}", total=None)

            def tick(stage: str, done: int, total: int, task: Any = task, bar: Progress = bar, k: str = k) -> None:
                bar.update(task, completed=done, total=total, description=f"{stage} {k}")

            try:
                path = build_snapshot(ws, k, dense_model=model, dense_text_chars=config.dense_text_chars,
                                      progress=tick)
            except NothingToIndex as exc:
                if kind == "all":
                    console.print(f"[yellow]skipped[/] {exc}")
                    continue
                raise _fail(str(exc)) from None
        console.print(f"[green]built[/] {k} index {path.name}")


def _results_table(results: list[Result], title: str) -> Table:
    table = Table(title=title, show_lines=False, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    table.add_column("applicant / kind", max_width=28)
    table.add_column("lang")
    table.add_column("score", justify="right")
    for r in results:
        rec = r.record
        name = rec.title or (rec.abstract[:60] + "…" if hasattr(rec, "abstract") else "")
        who = ", ".join(getattr(rec, "applicants", [])[:2]) or (getattr(rec, "kind", None) or "")
        table.add_row(str(r.rank), r.id, name, who, rec.language, f"{r.score:.4f}" if r.score < 1 else f"{r.score:.2f}")
    return table


def _print_explanations(results: list[Result]) -> None:
    for r in results:
        if r.explanation is None:
            continue
        ex = r.explanation
        console.print(f"[bold]#{r.rank} {r.id}[/] ({ex['language']})", highlight=False)
        shown = ex["matched_terms"][:8]  # most informative first
        terms = ", ".join(f"{t['term']} ({'/'.join(t['fields'])})" for t in shown) or "none"
        more = len(ex["matched_terms"]) - len(shown)
        console.print(f"  shared terms: {terms}" + (f" and {more} more" if more > 0 else ""), highlight=False)
        for field, snip in ex["snippets"].items():
            text, marked, last = snip["text"], [], 0
            for start, end in snip["highlights"]:
                marked += [_esc(text[last:start]), "[bold yellow]", _esc(text[start:end]), "[/]"]
                last = end
            marked.append(_esc(text[last:]))
            console.print(f"  {field}: " + "".join(marked).replace("\n", " "), highlight=False)
        if ex.get("closest_sentence"):
            cs = ex["closest_sentence"]
            console.print(f"  closest sentence ({cs['similarity']:.3f}): {_esc(cs['text'])}", highlight=False)
        parts = []
        for name, info in r.retrievers.items():
            if "abstained" in info:
                parts.append(f"{name}: abstained ({info['abstained']})")
            elif name == "fused":
                parts.append(f"fused ({info['method']}): {info['score']:.4f}")
            else:
                parts.append(f"{name}: rank {info.get('rank') or '-'} score {info.get('score')}")
        console.print("  " + " · ".join(parts), highlight=False)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Free text, Chinese or English")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    ipc: Annotated[list[str], typer.Option(help="IPC/CPC prefix (repeatable: any of)")] = [],  # noqa: B006
    applicant_type: Annotated[list[str], typer.Option(help="university/institute/company/individual")] = [],  # noqa: B006
    applicant: Annotated[str | None, typer.Option(help="Part of an applicant name")] = None,
    legal_status: Annotated[list[str], typer.Option(help="valid/pending/invalid/unknown (default: valid+unknown)")]
    = [],  # noqa: B006
    open_licence: Annotated[bool, typer.Option("--open-licence", help="Open-licence patents only")] = False,
    date_from: Annotated[str | None, typer.Option("--from", help="Applied/published from (YYYY-MM-DD)")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="... to (YYYY-MM-DD)")] = None,
    maturity: Annotated[list[str], typer.Option(help="Maturity (repeatable)")] = [],  # noqa: B006
    kind: Annotated[list[str], typer.Option(help="Record kind, e.g. 发明专利 (repeatable)")] = [],  # noqa: B006
    language: Annotated[list[str], typer.Option(help="zh/en (repeatable)")] = [],  # noqa: B006
    mode: Annotated[str | None, typer.Option(help="bm25, dense or hybrid (default: the ranker config's)")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Say why each result matched")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    home: HomeOpt = None,
) -> None:
    """Search patents by free text (Chinese or English), with filters."""
    if mode is not None and mode not in MODES:
        raise _fail(f"--mode must be one of {', '.join(MODES)}", 2)
    try:
        filters = PatentFilters(
            ipc=ipc, applicant_type=applicant_type, applicant=applicant, legal_status=legal_status or None,
            open_licence_only=open_licence, date_from=date.fromisoformat(date_from) if date_from else None,
            date_to=date.fromisoformat(date_to) if date_to else None, maturity=maturity, kind=kind, language=language,
        )
    except ValueError as exc:
        raise _fail(f"invalid filter: {exc}", 2) from None
    searcher = Searcher(Workspace(home))
    try:
        started = time.perf_counter()
        results = searcher.search_patents(query, k, filters, mode, explain)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
    except NotIndexed as exc:
        raise _fail(str(exc)) from None
    finally:
        searcher.close()
    if as_json:
        print(json.dumps({"query": query, "results": [r.to_dict() for r in results]}, ensure_ascii=False))
        return
    if not results:
        console.print(f"no patents match {query!r} with these filters")
        return
    used = mode or searcher.config.mode
    console.print(_results_table(results, f"{query}  ({used}: {len(results)} results, {elapsed * 1000:.0f} ms)"))
    _print_explanations(results)


def _demand_filters(industry: list[str], region: list[str], cooperation: list[str]) -> DemandFilters:
    return DemandFilters(industry=industry, region=region, cooperation_modes=cooperation)


RecordT = TypeVar("RecordT", Patent, Demand)


def _matched(home: Path | None,
             run: Callable[[Searcher], tuple[RecordT, list[Result]]]) -> tuple[RecordT, list[Result]]:
    """``run`` on a searcher over ``home``; a missing index or an unknown id is a clean CLI error."""
    searcher = Searcher(Workspace(home))
    try:
        return run(searcher)
    except (NotIndexed, UnknownRecord) as exc:
        raise _fail(str(exc)) from None
    finally:
        searcher.close()


def _print_match_json(key: str, record: Patent | Demand, results: list[Result]) -> None:
    print(json.dumps({key: record.model_dump(mode="json"), "results": [r.to_dict() for r in results]},
                     ensure_ascii=False))


@match_app.command("demand")
def match_demand_cmd(
    demand_id: Annotated[str, typer.Argument(help="A stored demand's id")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    ipc: Annotated[list[str], typer.Option(help="IPC/CPC prefix (repeatable)")] = [],  # noqa: B006
    mode: ModeOpt = None,
    explain: Annotated[bool, typer.Option("--explain")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    home: HomeOpt = None,
) -> None:
    """Patents that answer a demand."""
    demand, results = _matched(home, lambda searcher: match_demand(searcher, demand_id, k, PatentFilters(ipc=ipc),
                                                                    mode, explain))  # type: ignore[arg-type]
    if as_json:
        _print_match_json("demand", demand, results)
        return
    console.print(f"[bold]{demand.id}[/] {demand.title}: {demand.description[:150]}", highlight=False)
    console.print(_results_table(results, f"patents for demand {demand.id}"))
    _print_explanations(results)


@match_app.command("patent")
def match_patent_cmd(
    patent_id: Annotated[str, typer.Argument(help="A stored patent's id")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    industry: IndustryOpt = [],  # noqa: B006
    region: RegionOpt = [],  # noqa: B006
    cooperation: CooperationOpt = [],  # noqa: B006
    mode: ModeOpt = None,
    explain: Annotated[bool, typer.Option("--explain")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    home: HomeOpt = None,
) -> None:
    """Demands (enterprises) a patent could serve."""
    filters = _demand_filters(industry, region, cooperation)
    patent, results = _matched(home, lambda searcher: match_patent(searcher, patent_id, k, filters, mode,
                                                                    explain))  # type: ignore[arg-type]
    if as_json:
        _print_match_json("patent", patent, results)
        return
    console.print(f"[bold]{patent.id}[/] {patent.title or patent.abstract[:80]}", highlight=False)
    table = Table(title=f"demands for patent {patent.id}", title_justify="left")
    for col in ("#", "demand", "title", "industry", "score"):
        table.add_column(col)
    for r in results:
        d = r.record
        table.add_row(str(r.rank), r.id, d.title, getattr(d, "industry", None) or "", f"{r.score:.4f}")
    console.print(table)
    _print_explanations(results)


@match_app.command("portfolio")
def match_portfolio_cmd(
    applicant: Annotated[str | None, typer.Option(help="Every patent of this applicant (part of the name)")] = None,
    ids: Annotated[Path | None, typer.Option(help="A file of patent ids, one per line")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000)] = 10,
    per_patent: Annotated[int, typer.Option(min=1, max=200, help="Demands fetched per patent")] = 20,
    industry: IndustryOpt = [],  # noqa: B006
    region: RegionOpt = [],  # noqa: B006
    mode: ModeOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    home: HomeOpt = None,
) -> None:
    """Enterprises whose demands fit a portfolio, with the patents behind each match."""
    if not applicant and not ids:
        raise _fail("give --applicant NAME or --ids FILE", 2)
    id_list = None
    if ids:
        if not ids.is_file():
            raise _fail(f"{ids}: no such file", 2)
        id_list = [line.strip() for line in ids.read_text("utf-8").splitlines() if line.strip()]
    searcher = Searcher(Workspace(home))
    try:
        patents = portfolio_ids(searcher, applicant, id_list)
        with console.status(f"matching {len(patents)} patents ..."):
            matches = match_portfolio(searcher, patents, k, per_patent, filters=_demand_filters(industry, region, []),
                                      mode=mode)  # type: ignore[arg-type]
    except (NotIndexed, UnknownRecord, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        searcher.close()
    if as_json:
        print(json.dumps({"patents": patents, "enterprises": [m.to_dict() for m in matches]}, ensure_ascii=False))
        return
    table = Table(title=f"enterprises for a portfolio of {len(patents)} patents", title_justify="left")
    for col in ("#", "enterprise", "score", "best demand", "supporting patents"):
        table.add_column(col)
    for i, m in enumerate(matches, 1):
        best = m.demands[0]
        table.add_row(str(i), m.enterprise, f"{m.score:.4f}", f"{best['demand_id']} {best['title']}",
                      ", ".join(p["patent_id"] for p in best["patents"][:3]))
    console.print(table)


@app.command()
def stats(home: HomeOpt = None) -> None:
    """Record counts, facets, recent batches and index versions."""
    ws = Workspace(home)
    with ws.open_store() as store:
        table = Table(title=f"patent-match store {ws.store_path}", title_justify="left")
        table.add_column("what")
        table.add_column("value")
        table.add_row("data version", str(store.data_version))
        for k in KINDS:
            table.add_row(k, str(store.count(k)))
        for field in ("language", "kind", "applicant_type", "legal_status"):
            counts = store.facet_counts("patents", field, limit=6)
            table.add_row(f"patents by {field}", ", ".join(f"{v} {n}" for v, n in counts) or "-")
        for k in KINDS:
            manifest = ws.current_manifest(k)
            if manifest is None:
                table.add_row(f"{k} index", "[yellow]not built[/]")
            else:
                stale = "" if manifest["data_version"] == store.data_version else " [yellow](stale: rebuild)[/]"
                table.add_row(f"{k} index", f"{manifest['name']}: {manifest['doc_count']} docs, "
                                            f"built {manifest['built_at']}{stale}")
        console.print(table)


def _eval_progress(bar: Progress) -> Any:
    tasks: dict[str, Any] = {}

    def tick(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)
        if done >= total:
            bar.remove_task(tasks.pop(stage))

    return tick


def _load_sets(data: list[Path], split: str | None) -> list[Any]:
    from eval.beir import DatasetError, load_dataset

    try:
        return [load_dataset(d, split) for d in data]
    except DatasetError as exc:
        raise _fail(str(exc)) from None


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help="A BEIR folder: corpus.jsonl(.gz), queries.jsonl, qrels/")] = None,
    split: Annotated[str | None, typer.Option(help="qrels/<split>.tsv (default: test)")] = None,
    mode: Annotated[str | None, typer.Option(help="bm25, dense, hybrid or rank-bm25 (default: what search serves)")]
    = None,
    model: Annotated[str | None, typer.Option(help="Dense model (e5-small, use-m3, or a folder)")] = None,
    fusion: Annotated[str | None, typer.Option(help="rrf or convex")] = None,
    weight: Annotated[float | None, typer.Option(help="Convex fusion: BM25's weight (0..1)")] = None,
    rrf_k: Annotated[int | None, typer.Option(help="RRF's k")] = None,
    per_language: Annotated[bool | None, typer.Option("--per-language/--global-pool",
                                                      help="Fetch dense candidates per document language")] = None,
    out: Annotated[Path | None, typer.Option(help="results.json: aggregate and per-query metrics")] = None,
    run_out: Annotated[Path | None, typer.Option(help="TREC run file of the top 100 per query")] = None,
    home: HomeOpt = None,
) -> None:
    """Evaluate one configuration on one set (no flags: exactly what `pmatch search` serves)."""
    if ctx.invoked_subcommand:
        return
    if data is None:
        raise _fail("give --data DIR (a BEIR folder), or a subcommand: tune, ablation", 2)
    from eval.beir import DatasetError
    from eval.evaluate import evaluate_config
    from eval.runner import EvalConfig, Workspaces
    from eval.trec import write_run

    if mode is not None and mode not in (*MODES, "rank-bm25"):
        raise _fail("--mode must be bm25, dense, hybrid or rank-bm25", 2)
    (dataset,) = _load_sets([data], split)
    config = EvalConfig(mode=mode, model=model, fusion=fusion, weight=weight, rrf_k=rrf_k, per_language=per_language)
    workspaces = Workspaces()
    try:
        with _progress() as bar:
            result, run = evaluate_config(dataset, config, workspaces, home or Workspace(None).home,
                                          _eval_progress(bar))
    except (DatasetError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        workspaces.close()
    table = Table(title=f"{dataset.name} ({dataset.split}, {result['queries']} queries): {result['label']}",
                  title_justify="left")
    for name in result["metrics"]:
        table.add_column(name, justify="right")
    table.add_row(*(f"{v:.4f}" for v in result["metrics"].values()))
    console.print(table)
    if out:
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        console.print(f"wrote {out}")
    if run_out:
        write_run(run, run_out, result["label"])
        console.print(f"wrote {run_out}")


@eval_app.command("tune")
def eval_tune(
    data: Annotated[list[Path], typer.Option(help="BEIR folders with a dev split (repeatable)")],
    config_out: Annotated[Path | None, typer.Option(help="Where to write the ranker config (default HOME/ranker.json)")]
    = None,
    report: Annotated[Path | None, typer.Option(help="Write the whole grid as JSON")] = None,
    home: HomeOpt = None,
) -> None:
    """Pick RRF's k and the convex weight on the dev splits; write the winner to the ranker config."""
    from eval.runner import Workspaces
    from eval.tune import apply, tune, tuned_config_path

    ws = Workspace(home)
    datasets = _load_sets(data, "dev")
    workspaces = Workspaces()
    try:
        with _progress() as bar:
            result = tune(datasets, workspaces, ws.home, _eval_progress(bar))
    finally:
        workspaces.close()
    table = Table(title=f"dev nDCG@10, dense model {result['model']} (the 12 best settings and the references)",
                  title_justify="left")
    for col in ("fusion", "param", "abstain credit", *[d.name for d in datasets], "mean"):
        table.add_column(col)
    for name, ref in result["references"].items():
        table.add_row(f"{name} alone", "", "", *(f"{ref[d.name]:.4f}" for d in datasets), f"{ref['mean']:.4f}")
    for row in sorted(result["grid"], key=lambda r: -r["mean_ndcg@10"])[:12]:
        param = f"k={row['param']}" if row["fusion"] == "rrf" else f"w_bm25={row['param']}"
        table.add_row(row["fusion"], param, f"{row['abstain_credit']:g}",
                      *(f"{row['ndcg@10'][d.name]:.4f}" for d in datasets), f"{row['mean_ndcg@10']:.4f}")
    console.print(table)
    target = config_out or tuned_config_path(ws.home)
    config = apply(result["best"], load_config(ws.home), target)
    console.print(f"[green]wrote[/] {target}: fusion={config.fusion} rrf_k={config.rrf_k} "
                  f"convex_weight_bm25={config.convex_weight_bm25} abstain_credit={config.abstain_credit}")
    if report:
        report.write_text(json.dumps(result, indent=1), encoding="utf-8")


@eval_app.command("ablation")
def eval_ablation(
    data: Annotated[list[Path], typer.Option(help="BEIR folders (repeatable)")],
    split: Annotated[str, typer.Option(help="Which qrels split")] = "test",
    markdown_out: Annotated[Path, typer.Option(help="Markdown table")] = Path("eval/RESULTS.md"),
    json_out: Annotated[Path, typer.Option(help="Everything, per query included")] = Path("eval/results.json"),
    extra_model: Annotated[list[str], typer.Option(help="Also a hybrid RRF row with this dense model")] = [],  # noqa: B006
    home: HomeOpt = None,
) -> None:
    """Every set x every ranker (rank-bm25, bm25, dense e5-small, dense use-m3, hybrid rrf, hybrid convex)."""
    import shlex
    import sys

    from eval.ablation import markdown, run_ablation
    from eval.runner import Workspaces

    ws = Workspace(home)
    datasets = _load_sets(data, split)
    workspaces = Workspaces()
    try:
        with _progress() as bar:
            result = run_ablation(datasets, workspaces, ws.home, _eval_progress(bar), tuple(extra_model))
    finally:
        workspaces.close()
    command = "pmatch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    markdown_out.write_text(markdown(result, command), encoding="utf-8")
    json_out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    console.print(markdown(result, command), highlight=False)
    console.print(f"wrote {markdown_out} and {json_out}")


@app.command()
def demo(
    home: HomeOpt = None,
    sample: Annotated[Path, typer.Option(help="Folder with patents.jsonl.gz and demands.jsonl.gz")] = SAMPLE_DIR,
) -> None:
    """Load the bundled real sample data, build the indexes and run example searches (the quick start)."""
    import gzip
    import shutil
    import tempfile

    ws = Workspace(home)
    with ws.open_store() as store:
        empty = store.count("patents") == 0
    if empty:
        for k in KINDS:
            source = sample / f"{k}.jsonl.gz"
            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / f"{k}.jsonl"
                with gzip.open(source, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                console.print(f"loading bundled {k} from {source.name}")
                ingest(k, plain, home=ws.home)
    else:
        console.print(f"store {ws.store_path} already has data: not reloading the sample")
    config = load_config(ws.home)
    _seed_vectors(ws, config.dense_model)
    with ws.open_store() as store:
        version = store.data_version
    for k in KINDS:
        manifest = ws.current_manifest(k) or {}
        dense = manifest.get("components", {}).get("dense", {}).get("metadata", {}).get("model")
        if manifest.get("data_version") != version or dense != config.dense_model:
            index_build(k, home=ws.home)
    examples = [("锂离子电池 正极材料", None), ("graphics processor thread scheduling", None),
                ("A method for preparing cathode material for lithium batteries", "hybrid")]
    for query, mode in examples:
        search(query, k=5, mode=mode, home=ws.home)
    console.print("\nTry: [bold].venv/bin/pmatch search \"石墨烯 散热膜\" --explain[/]  ·  "
                  "[bold].venv/bin/pmatch match demand ZB-D-0001 --explain[/]  ·  [bold].venv/bin/pmatch stats[/]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (each loads the model)")] = 1,
    reads_need_key: Annotated[bool, typer.Option("--reads-need-key", help="Require an API key for reads too")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    home: HomeOpt = None,
) -> None:
    """Run the HTTP service on the workspace's store and indexes (interactive docs at /docs)."""
    from api.app import ServiceSettings
    from api.service import serve as run_server

    settings = ServiceSettings.from_env()
    if reads_need_key:
        settings = settings.model_copy(update={"reads_need_key": True})
    run_server(host, port, home, settings=settings, log_level=log_level, workers=workers)


@keys_app.command("create")
def keys_create_cmd(
    name: Annotated[str, typer.Argument(help="Who or what uses the key (letters, digits, _.@-)")],
    home: HomeOpt = None,
) -> None:
    """Create an API key. It is printed once; only a salted hash is stored."""
    from api.service import keys_create

    try:
        key = keys_create(home, name)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    print(key)


def _seed_vectors(ws: Workspace, model: str) -> None:
    """Load the shipped precomputed vectors of ``model`` into the vector cache (if made by this exact model)."""
    from indexes.embedders import load_embedder
    from indexes.vector_cache import VectorCache, npz_header

    files = sorted(VECTORS_DIR.glob(f"{model}.*.npz"))
    if not files:
        return
    fingerprint = load_embedder(model).fingerprint
    with VectorCache(ws.vector_cache_path) as cache:
        for path in files:
            if npz_header(path).get("fingerprint") != fingerprint:
                console.print(f"[yellow]{path.name} was made by another build of {model}: documents will be "
                              "embedded here instead (slower)[/]")
                continue
            n = cache.import_npz(path, fingerprint)
            console.print(f"loaded {n} precomputed {model} vectors from {path.name}")


register_shortlist_commands(app)

if __name__ == "__main__":
    app()
