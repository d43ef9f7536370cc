"""What the ``pmatch`` commands share: the consoles, a clean failure, argument checks and a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from matcher.store import COLLECTIONS, Collection
from matcher.workspace import Workspace

console = Console()
err = Console(stderr=True)

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "data"
SAMPLE_DIR = DATA_DIR / "sample"
VECTORS_DIR = DATA_DIR / "vectors"
MODES = ("bm25", "dense", "hybrid")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; returns the ``typer.Exit`` to raise (1 the run failed, 2 bad input)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def existing_workspace(home: Path | None) -> Workspace:
    """The workspace at ``home`` for a read command; a folder with no store is refused, not turned into an empty one."""
    ws = Workspace(home)
    if not ws.exists():
        raise fail(f"{ws.home} holds no patent-match workspace (no {ws.store_path.name}): give the --home you ingested "
                   "into (or set PMATCH_HOME), or load data first with `pmatch ingest` or `pmatch demo`", 1)
    return ws


def check_query(query: str) -> str:
    """A search query must have text, as the HTTP API requires."""
    if not query.strip():
        raise fail("query: required, but empty (give the text to search for)", 2)
    return query


def check_kind(value: str) -> Collection:
    if value not in COLLECTIONS:
        raise fail(f"kind must be one of {', '.join(COLLECTIONS)}, not {value!r}", 2)
    return value  # type: ignore[return-value]


def parse_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise fail(f"--map takes COLUMN=field (or COLUMN= to ignore), not {pair!r}", 2)
        column, field = pair.split("=", 1)
        mapping[column.strip()] = field.strip()
    return mapping


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)
