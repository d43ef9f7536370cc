"""``pmatch index build``: make the stored records searchable (a flush of what changed, or ``--full``: a rebuild)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import Progress

from api.cli.common import check_kind, check_lang, console, fail, progress
from api.cli.engine import engine_spec, print_report
from api.cli.options import AddressOpt, EngineOpt, HomeOpt, LangOpt, WorkersOpt, h
from matcher.batch import embed_collection, embed_titles
from matcher.config import load_config
from matcher.engine import EngineUnavailable
from matcher.flush import FlushResult, update_snapshot
from matcher.full_build import build_snapshot
from matcher.i18n import text
from matcher.indexing import NothingToIndex
from matcher.match_events import pending_count
from matcher.merge import merge_segments
from matcher.searchable import Searchable, notify_searchable
from matcher.snapshot import SnapshotManifest
from matcher.store import COLLECTIONS, Collection
from matcher.workspace import Workspace


def index_build(
    kind: Annotated[str, typer.Option(help=h("index.index_build.kind"))] = "all",
    dense_model: Annotated[str | None, typer.Option(help=h("index.index_build.dense_model"))] = None,
    full: Annotated[bool, typer.Option("--full", help=h("index.index_build.full"))] = False,
    merge: Annotated[bool, typer.Option("--merge", help=h("index.index_build.merge"))] = False,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Index what changed since the served snapshot (a new segment, deletions masked), or with --full rebuild BM25,
    dense and filter indexes from the store; searches switch to the new snapshot atomically. With --engine ray the
    documents are embedded on a Ray cluster first (into the vector cache the build reads)."""
    check_lang(lang)
    spec = engine_spec(engine, address, workers, lang)
    ws = Workspace(home)
    kinds: list[Collection] = list(COLLECTIONS) if kind == "all" else [check_kind(kind, lang)]
    config = load_config(ws.home)
    model = config.dense_model if dense_model is None else (None if dense_model == "none" else dense_model)
    for k in kinds:
        with progress() as bar:
            task = bar.add_task(text("cli.status.indexing", lang, kind=k), total=None)

            def tick(stage: str, done: int, total: int, task: Any = task, bar: Progress = bar, k: str = k) -> None:
                bar.update(task, completed=done, total=total, description=f"{stage} {k}")

            try:
                if spec.name == "ray" and model:
                    report = embed_collection(ws, k, model, config.dense_text_chars, spec, progress=tick)
                    if report is not None:
                        print_report(report, lang)
                if spec.name == "ray" and config.title_model:
                    report = embed_titles(ws, k, config.title_model, spec, progress=tick)
                    if report is not None:
                        print_report(report, lang)
                if full:
                    path = build_snapshot(ws, k, dense_model=model, dense_text_chars=config.dense_text_chars,
                                          progress=tick, title_model=config.title_model)
                    result = None
                else:
                    result = update_snapshot(ws, k, dense_model=model, dense_text_chars=config.dense_text_chars,
                                             progress=tick, title_model=config.title_model)
                    if result.state == "empty":
                        raise NothingToIndex("index.nothing", kind=k, store=str(ws.store_path))
            except EngineUnavailable as exc:
                raise fail(exc.message(lang), 1, lang) from None
            except NothingToIndex as exc:
                if kind == "all":
                    console.print(f"[yellow]{text('cli.error.skipped', lang)}[/] {exc.message(lang)}")
                    continue
                raise fail(exc.message(lang), 1, lang) from None
        if result is None or result.full:
            path = path if result is None else result.snapshot  # type: ignore[assignment]
            console.print(text("cli.index.built", lang, kind=k, name=path.name), highlight=False)
            notify_searchable(Searchable(k, path, full=True))
        else:
            report_flush(k, result, lang)
        if merge:
            with console.status(text("cli.status.merging", lang, kind=k)):
                merged = merge_segments(ws, k, model, config.dense_text_chars, force=True)
            if merged is not None:
                console.print(text("cli.index.merged", lang, kind=k, name=merged.name), highlight=False)
    with ws.open_store() as store:
        waiting = sum(pending_count(store).values())
    if waiting:
        console.print(text("docking.run.hint", lang, count=waiting), highlight=False)


def report_flush(kind: Collection, result: FlushResult, lang: str) -> None:
    """Say what a flush made searchable, and tell the searchable hooks."""
    if result.state != "published" or result.snapshot is None:
        return
    segments = len(SnapshotManifest.read(result.snapshot).segments)
    console.print(text("cli.index.searchable", lang, kind=kind, added=len(result.added), deleted=len(result.deleted),
                       seconds=result.seconds.get("total", 0.0), segments=segments), highlight=False)
    if result.added or result.deleted:
        notify_searchable(Searchable(kind, result.snapshot, tuple(result.added), tuple(result.deleted)))
