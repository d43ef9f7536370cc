"""What keeps the page safe to use: CSRF tokens on every form that posts, and the API key in a cookie.

CSRF: a double-submit token. A random token lives in an HttpOnly, SameSite=Strict cookie and is written into each
form; a POST is accepted only when the form's token equals the cookie's (a cross-site page can neither read the
cookie nor make the browser send it).

The API key: entered once per browser session on ``/login`` and checked against the key store, then kept in an
HttpOnly, SameSite=Strict session cookie (``Secure`` over HTTPS), never in a URL or in page JavaScript. Writes made
from the page present it to ``Service.check_key`` exactly as an ``X-API-Key`` header would.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

CSRF_COOKIE = "pm_csrf"
CSRF_FIELD = "csrf"
KEY_COOKIE = "pm_key"


class CsrfError(Exception):
    """A form posted without the page's token (a stale page, or a cross-site request)."""


class KeyNeeded(Exception):
    """Reads are closed (``ServiceSettings.reads_need_key``) and this browser has not given a valid key."""


def _cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")


def csrf_token(request: Request) -> tuple[str, bool]:
    """(the request's CSRF token, whether it is new and must be set as a cookie)."""
    given = request.cookies.get(CSRF_COOKIE, "")
    if len(given) >= 32:
        return given, False
    cached = getattr(request.state, "new_csrf", None)
    if cached is None:
        cached = request.state.new_csrf = secrets.token_urlsafe(32)
    return cached, True


def store_csrf(request: Request, response: Response, token: str) -> None:
    _cookie(request, response, CSRF_COOKIE, token)


def check_csrf(request: Request, submitted: object) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not isinstance(submitted, str) or not hmac.compare_digest(cookie, submitted):
        raise CsrfError


def presented_key(request: Request) -> str | None:
    return request.cookies.get(KEY_COOKIE) or None


def signed_in(request: Request) -> bool:
    return presented_key(request) is not None


def store_key(request: Request, response: Response, key: str) -> None:
    _cookie(request, response, KEY_COOKIE, key)


def forget_key(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path="/")


def read_access(request: Request) -> None:
    """The pages' counterpart of the API's read dependency: when reads need a key, the browser's key cookie must
    hold a valid one (the sign-in form on ``/upload`` sets it)."""
    service = request.app.state.service
    if service.settings.reads_need_key:
        key = presented_key(request)
        if key is None or service.keys.verify(key) is None:
            raise KeyNeeded
