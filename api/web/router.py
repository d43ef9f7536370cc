"""Every page's route, gathered into one router (``api.web.mount`` adds it to the application)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.web import events, feeds, match, portfolio, records, search, upload
from api.web.render import page_lang, render
from api.web.security import read_access
from matcher.i18n import text

router = APIRouter(include_in_schema=False)
for module in (search, records, match, events, portfolio, feeds):
    router.include_router(module.router, dependencies=[Depends(read_access)])
router.include_router(upload.router)  # the sign-in form lives there: reachable before a key is given


async def on_csrf_error(request: Request, exc: Exception) -> HTMLResponse:
    """A form posted without this browser's token: refuse it, and offer the page again (with a fresh form)."""
    return render(request, "error.html", status=403, message=text("web.error.csrf", page_lang(request)))


async def on_key_needed(request: Request, exc: Exception) -> HTMLResponse:
    """Reads are closed: ask for the key (then every page opens for this browser session)."""
    return render(request, "upload.html", status=401, key_ok=False, errors=[], report=None, status_link=None,
                  message=text("web.upload.reads_closed", page_lang(request)), kind="patents")
