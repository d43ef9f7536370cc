"""``pmatch serve``: run the HTTP service on the workspace (see ``api.http.server``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail
from api.cli.options import HomeOpt, h
from matcher.i18n import DEFAULT_LANG, text


def serve(
    host: Annotated[str, typer.Option(help=h("serve.serve.host"))] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=h("serve.serve.port"))] = 8000,
    workers: Annotated[int, typer.Option(min=1, help=h("serve.serve.workers"))] = 1,
    reads_need_key: Annotated[bool, typer.Option("--reads-need-key", help=h("serve.serve.reads_need_key"))] = False,
    ranker_config: Annotated[Path | None, typer.Option(help=h("serve.serve.ranker_config"))] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help=h("serve.serve.access_log"))] = True,
    log_level: Annotated[str, typer.Option(help=h("serve.serve.log_level"))] = "info",
    home: HomeOpt = None,
) -> None:
    """Run the HTTP service on the workspace's store and indexes (interactive docs at /docs).
    Settings come from PMATCH_API_* variables (see the README)."""
    from pydantic import ValidationError

    from api.http.server import serve as run_server
    from api.http.server import settings_from_env
    from matcher.config import RankerConfig

    settings = settings_from_env()
    if reads_need_key:
        settings = settings.model_copy(update={"reads_need_key": True})
    if ranker_config is not None:
        try:
            ranker = RankerConfig.model_validate_json(ranker_config.read_text("utf-8"))
        except (OSError, ValidationError) as exc:
            raise fail(text("cli.error.ranker_config", DEFAULT_LANG, path=ranker_config, reason=exc), 2) from None
        settings = settings.model_copy(update={"ranker": ranker})
    run_server(host, port, home, settings=settings, log_level=log_level, access_log=access_log, workers=workers)
