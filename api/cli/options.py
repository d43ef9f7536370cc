"""Command-line options shared by the ``pmatch`` commands (typer ``Annotated`` types)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import Field

from indexes.settings import PmatchSettings, read_settings
from matcher.i18n import DEFAULT_LANG, pick_lang, text


class HelpSettings(PmatchSettings):
    """What the command line reads before any option is parsed: --help is printed before --lang is."""

    lang: str = Field(default=DEFAULT_LANG, description="PMATCH_LANG: the language of --help (and --lang's default).")


HELP_LANG = pick_lang(read_settings(HelpSettings).lang)  # help texts follow $PMATCH_LANG (Chinese when unset)


def h(key: str) -> str:
    """The help text ``cli.help.<key>`` of an option, argument, command or command group, in ``HELP_LANG``."""
    return text(f"cli.help.{key}", HELP_LANG)


HomeOpt = Annotated[Path | None, typer.Option("--home", help=h("options.HomeOpt"))]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help=h("options.OutOpt"))]
LangOpt = Annotated[str, typer.Option("--lang", envvar="PMATCH_LANG",
                                      help=h("options.LangOpt"))]
ModeOpt = Annotated[str | None, typer.Option(help=h("options.ModeOpt"))]
IndustryOpt = Annotated[list[str], typer.Option(help=h("options.IndustryOpt"))]
RegionOpt = Annotated[list[str], typer.Option(help=h("options.RegionOpt"))]
CooperationOpt = Annotated[list[str], typer.Option(help=h("options.CooperationOpt"))]
ExplainRowsOpt = Annotated[bool, typer.Option("--explain/--no-explain", help=h("options.ExplainRowsOpt"))]
EngineOpt = Annotated[str, typer.Option("--engine", help=h("options.EngineOpt"))]
AddressOpt = Annotated[str | None, typer.Option("--address", help=h("options.AddressOpt"))]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help=h("options.WorkersOpt"))]
