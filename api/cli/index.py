"""``pmatch index build``: build the search indexes of the stored records as a new snapshot."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import Progress

from api.cli.common import check_kind, console, fail, progress
from api.cli.options import HomeOpt
from matcher.config import load_config
from matcher.indexing import NothingToIndex, build_snapshot
from matcher.store import COLLECTIONS, Collection
from matcher.workspace import Workspace


def index_build(
    kind: Annotated[str, typer.Option(help="patents, demands or all")] = "all",
    dense_model: Annotated[str | None, typer.Option(help="Embedding model for the dense index (default: the "
                                                         "ranker config's); 'none' builds BM25 only")] = None,
    home: HomeOpt = None,
) -> None:
    """Build BM25, dense and filter indexes as a new snapshot and switch searches to it atomically."""
    ws = Workspace(home)
    kinds: list[Collection] = list(COLLECTIONS) if kind == "all" else [check_kind(kind)]
    config = load_config(ws.home)
    model = config.dense_model if dense_model is None else (None if dense_model == "none" else dense_model)
    for k in kinds:
        with progress() as bar:
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
                raise fail(str(exc)) from None
        console.print(f"[green]built[/] {k} index {path.name}")
