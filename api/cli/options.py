"""Command-line options shared by the ``pmatch`` commands (typer ``Annotated`` types)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Data folder (default $PMATCH_HOME or ./.pmatch).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write .xlsx, .csv or .json (format by extension).")]
LangOpt = Annotated[str, typer.Option("--lang", envvar="PMATCH_LANG",
                                      help="Language of messages, columns and sheet names: zh or en ($PMATCH_LANG).")]
ModeOpt = Annotated[str | None, typer.Option(help="bm25, dense or hybrid (default: the ranker config's).")]
IndustryOpt = Annotated[list[str], typer.Option(help="Part of the demand's industry (repeatable)")]
RegionOpt = Annotated[list[str], typer.Option(help="Part of the demand's region (repeatable)")]
CooperationOpt = Annotated[list[str], typer.Option(help="Cooperation mode (repeatable)")]
ExplainRowsOpt = Annotated[bool, typer.Option("--explain/--no-explain", help="Explain every row (slower)")]
EngineOpt = Annotated[str, typer.Option("--engine", help="local (this process) or ray (a Ray cluster; see --address). "
                                                         "Ray is an extra: pip install '.[ray]'")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="The Ray cluster to join: host:port of its head "
                                                                  "(`ray start --head`), or auto; default: start one "
                                                                  "on this machine")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers at once (default: one per CPU "
                                                                         "of the cluster)")]
