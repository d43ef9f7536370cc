"""Rendering a page: the Jinja2 environment (autoescaped, strict), the page language, links that keep it, and the
security headers every page carries (a Content-Security-Policy that allows no inline script or style)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import ChainableUndefined, Environment, FileSystemLoader

from api.web.security import csrf_token, signed_in, store_csrf
from matcher.i18n import DEFAULT_LANG, LANGS, Lang, text

TEMPLATES = Path(__file__).with_name("templates")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
NAV = (("/", "web.nav.search"), ("/match", "web.nav.match"), ("/events", "web.nav.events"),
       ("/portfolio", "web.nav.portfolio"), ("/feeds", "docking.nav.feeds"), ("/upload", "web.nav.upload"))

R = TypeVar("R", bound=Response)

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=ChainableUndefined,
                  trim_blocks=True, lstrip_blocks=True)


def page_lang(request: Request) -> Lang:
    """``?lang=en`` switches to English; Chinese otherwise."""
    lang = request.query_params.get("lang", DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG  # type: ignore[return-value]


def link(path: str, lang: Lang, params: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> str:
    """``path`` with ``params`` (lists repeat) and the page language when it is not the default."""
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    flat = [(k, v) for k, vs in pairs for v in (vs if isinstance(vs, list | tuple) else [vs])
            if v is not None and v != "" and k != "lang"]
    if lang != DEFAULT_LANG:
        flat.append(("lang", lang))
    return f"{path}?{urlencode(flat)}" if flat else path


def marked(snippet: Any) -> list[tuple[str, bool]]:
    """A snippet (``api.schemas.Snippet``) as (text, highlighted) pieces, for ``<mark>`` in a template (each piece
    is still escaped when rendered)."""
    if not snippet:
        return []
    body, pieces, last = str(snippet.text), [], 0
    for start, end in snippet.highlights:
        if start > last:
            pieces.append((body[last:start], False))
        pieces.append((body[start:end], True))
        last = end
    if last < len(body):
        pieces.append((body[last:], False))
    return pieces


def render(request: Request, template: str, status: int = 200, headers: Mapping[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    lang = page_lang(request)
    token, fresh = csrf_token(request)
    switch_to: Lang = "en" if lang == "zh" else "zh"
    here = list(request.query_params.multi_items()) if request.method == "GET" else []

    def t(key: str, **params: Any) -> str:
        return text(key, lang, **params)

    body = env.get_template(template).render(
        lang=lang, t=t, link=lambda path, params=(): link(path, lang, params), marked=marked, csrf=token,
        signed_in=signed_in(request), nav=NAV, path=request.url.path,
        switch_lang=switch_to, switch_url=link(request.url.path, switch_to, here), **context)
    response = HTMLResponse(body, status, headers=dict(headers or {}))
    secure(response)
    if fresh:
        store_csrf(request, response, token)
    return response


def secure(response: R) -> R:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
