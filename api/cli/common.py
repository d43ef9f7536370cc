"""What the ``pmatch`` commands share: the consoles, a clean failure, argument checks and a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from matcher.i18n import DEFAULT_LANG, LANGS, Lang, text
from matcher.store import COLLECTIONS, Collection
from matcher.workspace import Workspace

console = Console()
err = Console(stderr=True)

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "data"
SAMPLE_DIR = DATA_DIR / "sample"
VECTORS_DIR = DATA_DIR / "vectors"
MODES = ("bm25", "dense", "hybrid")


def fail(message: str, code: int = 1, lang: str = DEFAULT_LANG) -> typer.Exit:
    """Print ``error: message`` (``错误：``) on stderr; returns the ``typer.Exit`` to raise (1 the run failed, 2 bad
    input). ``message`` is plain text already in ``lang`` (a catalogue string, or what a checked file or exception
    said): brackets in it are shown, never read as markup."""
    err.print(f"[bold red]{text('cli.error.prefix', lang)}[/]{escape(message)}", highlight=False)
    return typer.Exit(code)


def warn(message: str, lang: str = DEFAULT_LANG) -> None:
    console.print(f"[yellow]{text('cli.error.warning', lang)}[/]{escape(message)}", highlight=False)


def check_lang(lang: str) -> Lang:
    """``--lang`` (or ``$PMATCH_LANG``) must be zh or en (exit 2, said in Chinese: the language asked for is
    unknown)."""
    if lang not in LANGS:
        raise fail(text("cli.error.lang", DEFAULT_LANG, value=repr(lang)), 2)
    return lang  # type: ignore[return-value]


def check_mode(mode: str | None, lang: str, modes: tuple[str, ...] = ("bm25", "dense", "hybrid")) -> None:
    if mode is not None and mode not in modes:
        raise fail(text("cli.error.mode", lang, modes=", ".join(modes), value=repr(mode)), 2, lang)


def existing_workspace(home: Path | None, lang: str = DEFAULT_LANG) -> Workspace:
    """The workspace at ``home`` for a read command; a folder with no store is refused, not turned into an empty one."""
    ws = Workspace(home)
    if not ws.exists():
        raise fail(text("cli.error.no_workspace", lang, home=ws.home, store=ws.store_path.name), 1, lang)
    return ws


def check_query(query: str, lang: str = DEFAULT_LANG) -> str:
    """A search query must have text, as the HTTP API requires."""
    if not query.strip():
        raise fail(text("cli.error.empty_query", lang), 2, lang)
    return query


def check_kind(value: str, lang: str = DEFAULT_LANG) -> Collection:
    if value not in COLLECTIONS:
        raise fail(text("cli.error.kind", lang, kinds=", ".join(COLLECTIONS), value=repr(value)), 2, lang)
    return value  # type: ignore[return-value]


def parse_map(pairs: list[str], lang: str = DEFAULT_LANG) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise fail(text("cli.error.map", lang, value=repr(pair)), 2, lang)
        column, field = pair.split("=", 1)
        mapping[column.strip()] = field.strip()
    return mapping


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)
