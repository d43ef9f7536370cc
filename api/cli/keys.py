"""``pmatch keys create``: API keys for the HTTP service's write endpoints."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import fail
from api.cli.options import HomeOpt, h


def keys_create_cmd(
    name: Annotated[str, typer.Argument(help=h("keys.keys_create_cmd.name"))],
    home: HomeOpt = None,
) -> None:
    """Create an API key. It is printed once; only a salted hash is stored."""
    from api.http.keys import keys_create

    try:
        key = keys_create(home, name)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    print(key)
