"""``pmatch keys create``: API keys for the HTTP service's write endpoints."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import check_lang, fail
from api.cli.options import HomeOpt, LangOpt, h


def keys_create_cmd(
    name: Annotated[str, typer.Argument(help=h("keys.keys_create_cmd.name"))],
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Create an API key. It is printed once; only a salted hash is stored."""
    from api.http.keys import KeyRefused, keys_create

    check_lang(lang)
    try:
        key = keys_create(home, name)
    except KeyRefused as exc:
        raise fail(exc.message(lang), 2, lang) from None
    print(key)
