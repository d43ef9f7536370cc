"""The language of a request's messages: ``Accept-Language``, Chinese unless English is preferred.

The outermost middleware (``api.http.middleware.RequestLanguage``) reads the header once per request
(``lang_of``, with ``matcher.i18n.pick_lang``: the supported language, zh or en, with the highest weight wins,
and a request that names neither, or sends no header, gets Chinese, the project's first language), keeps it in a
context variable for the code that words an error (``say``, ``current``), and answers with ``Content-Language``.
Error codes (``error.code``, a detail's ``code``) never change with the language; only ``message`` and ``reason``
are worded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from starlette.types import Scope

from matcher.i18n import DEFAULT_LANG, Lang, pick_lang
from matcher.i18n import Message as Words

_current: ContextVar[Lang] = ContextVar("pmatch_request_lang", default=DEFAULT_LANG)


def current() -> Lang:
    """The language of the request being answered (zh outside a request)."""
    return _current.get()


@contextmanager
def speaking(lang: Lang) -> Iterator[None]:
    """Word the errors raised inside in ``lang`` (a page that has its own language switch, not the header's)."""
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def say(key: str, **params: Any) -> str:
    """Catalogue string ``key`` in the request's language."""
    return Words(key, **params).text(current())


def words(message: Words | str) -> str:
    """A catalogue message in the request's language (a plain string as it is)."""
    return message.text(current()) if isinstance(message, Words) else message


def lang_of(scope: Scope) -> Lang:
    headers = dict(scope.get("headers") or [])
    return pick_lang(headers.get(b"accept-language", b"").decode("latin-1"))
