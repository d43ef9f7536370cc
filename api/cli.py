"""The ``pmatch`` command line: ingest, index, search, stats, and the bundled-data demo."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from matcher.filters import PatentFilters
from matcher.indexing import NothingToIndex, build_snapshot
from matcher.ingest import IngestError, ingest_file
from matcher.search import NotIndexed, Result, Searcher
from matcher.store import KINDS, Kind
from matcher.workspace import Workspace

app = typer.Typer(help="patent-match: bilingual patent supply-demand matching.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
index_app = typer.Typer(help="Build the search indexes from the store.", no_args_is_help=True)
app.add_typer(index_app, name="index")
console = Console()
err = Console(stderr=True)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
HomeOpt = Annotated[Path | None, typer.Option("--home", help="Data folder (default $PMATCH_HOME or ./.pmatch).")]


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
    home: HomeOpt = None,
) -> None:
    """Build BM25 and filter indexes as a new snapshot and switch searches to it atomically."""
    ws = Workspace(home)
    kinds: list[Kind] = list(KINDS) if kind == "all" else [_kind(kind)]
    for k in kinds:
        with _progress() as bar:
            task = bar.add_task(f"indexing {k}", total=None)

            def tick(stage: str, done: int, total: int, task: Any = task, bar: Progress = bar, k: str = k) -> None:
                bar.update(task, completed=done, total=total, description=f"{stage} {k}")

            try:
                path = build_snapshot(ws, k, progress=tick)
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
        table.add_row(str(r.rank), r.id, name, who, rec.language, f"{r.score:.2f}")
    return table


def _result_json(r: Result) -> dict[str, Any]:
    return {"rank": r.rank, "id": r.id, "score": r.score, "record": r.record.model_dump(mode="json")}


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
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    home: HomeOpt = None,
) -> None:
    """Search patents by keyword, with filters."""
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
        results = searcher.search_patents(query, k, filters)
        elapsed = time.perf_counter() - started
    except NotIndexed as exc:
        raise _fail(str(exc)) from None
    finally:
        searcher.close()
    if as_json:
        print(json.dumps({"query": query, "results": [_result_json(r) for r in results]}, ensure_ascii=False))
        return
    if not results:
        console.print(f"no patents match {query!r} with these filters")
        return
    console.print(_results_table(results, f"{query}  ({len(results)} results, {elapsed * 1000:.0f} ms)"))


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
                ingest(k, plain, [], False, None, ws.home)
    else:
        console.print(f"store {ws.store_path} already has data: not reloading the sample")
    stale = [k for k in KINDS if (ws.current_manifest(k) or {}).get("data_version") != _data_version(ws)]
    if stale:
        index_build("all", ws.home)
    for query in ("锂离子电池 正极材料", "graphics processor thread scheduling"):
        search(query, 5, [], [], None, [], False, None, None, [], [], [], False, ws.home)
    console.print("\nTry: [bold]pmatch search \"石墨烯 散热膜\" --k 5[/]   ·   [bold]pmatch stats[/]")


def _data_version(ws: Workspace) -> int:
    with ws.open_store() as store:
        return store.data_version


if __name__ == "__main__":
    app()
