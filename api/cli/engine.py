"""The ``--engine local|ray --address --workers`` options of the batch commands, and ``pmatch embed``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import check_kind, check_lang, console, fail
from api.cli.options import AddressOpt, EngineOpt, HomeOpt, LangOpt, WorkersOpt, h
from api.cli.progress import StageProgress
from matcher.batch import PARTITION_TEXTS, JobReport, embed_job, file_texts, store_texts
from matcher.config import load_config
from matcher.engine import ENGINES, EngineSpec, EngineUnavailable, require_ray
from matcher.i18n import text
from matcher.ingest import IngestError, accepted, read_file
from matcher.ray_engine import check_reachable
from matcher.store import COLLECTIONS, Collection
from matcher.workspace import Workspace


def engine_spec(engine: str, address: str | None, workers: int | None, lang: str) -> EngineSpec:
    """The engine asked for, refused at once (exit 2) when the options are wrong or Ray is not installed."""
    check_lang(lang)
    if engine not in ENGINES:
        raise fail(text("engine.unknown", lang, engine=engine), 2, lang)
    if address and engine != "ray":
        raise fail(text("engine.address_needs_ray", lang), 2, lang)
    if engine == "ray":
        try:
            require_ray()
        except EngineUnavailable as exc:
            raise fail(exc.message(lang), 2, lang) from None
        if address:
            try:
                check_reachable(address)  # before any model or index is loaded
            except EngineUnavailable as exc:
                raise fail(exc.message(lang), 2 if exc.key == "engine.bad_address" else 1, lang) from None
    return EngineSpec(engine, address or None, workers)  # type: ignore[arg-type]


def print_report(report: JobReport, lang: str) -> None:
    d = report.to_dict()
    console.print(text("engine.report", lang, what=d["what"], partitions=d.get("partitions", 0),
                       resumed=d.get("resumed", 0), computed=d.get("computed", 0), engine=d["engine"],
                       workers=d["workers"] or "auto", seconds=f"{report.seconds:.1f}"), highlight=False)


def embed(
    file: Annotated[Path | None, typer.Argument(help=h("engine.embed.file"))] = None,
    kind: Annotated[str, typer.Option(help=h("engine.embed.kind"))] = "all",
    model: Annotated[str | None, typer.Option(help=h("engine.embed.model"))] = None,
    engine: EngineOpt = "local",
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    partition_size: Annotated[int, typer.Option(min=1, max=100_000,
                                                help=h("engine.embed.partition_size"))] = PARTITION_TEXTS,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Fill the vector cache with the document vectors of the stored records or of a file, as a resumable job."""
    check_lang(lang)
    spec = engine_spec(engine, address, workers, lang)
    ws = Workspace(home)
    config = load_config(ws.home)
    name = model or config.dense_model
    chars = config.dense_text_chars
    if file is not None:
        if kind not in COLLECTIONS:
            raise fail(text("cli.error.file_kind", lang), 2, lang)
        if not file.is_file():
            raise fail(text("cli.error.no_file", lang, path=file), 2, lang)
        try:
            records = accepted(read_file(file, kind), str(file), skip_invalid=False)  # type: ignore[arg-type]
        except IngestError as exc:
            raise fail(exc.text(lang), 2, lang) from None
        sources = [file_texts(records, file, chars)]
    else:
        if not ws.exists():
            raise fail(text("cli.error.no_workspace_to_embed", lang, home=ws.home), 1, lang)
        kinds: list[Collection] = list(COLLECTIONS) if kind == "all" else [check_kind(kind, lang)]
        sources = [store_texts(ws, k, chars) for k in kinds]
    for texts, source in sources:
        try:
            with StageProgress(lang) as bar:
                report = embed_job(ws, name, texts, spec, source, partition_size, progress=bar.tick)
        except EngineUnavailable as exc:
            raise fail(exc.message(lang), 1, lang) from None
        d = report.details
        console.print(text("engine.embed_summary", lang, texts=d["texts"], unique=d["unique"], cached=d["cached"],
                           embedded=d["embedded"], model=name), highlight=False)
        print_report(report, lang)
