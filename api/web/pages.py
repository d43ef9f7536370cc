"""Every page's route, gathered into one router (``api.web.mount`` adds it to the application)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.web import events, match, portfolio, records, search, upload
from api.web.render import page_lang, render
from matcher.i18n import text

router = APIRouter(include_in_schema=False)
for module in (search, records, match, events, portfolio, upload):
    router.include_router(module.router)


async def on_csrf_error(request: Request, exc: Exception) -> HTMLResponse:
    """A form posted without this browser's token: refuse it, and offer the page again (with a fresh form)."""
    return render(request, "error.html", status=403, message=text("web.error.csrf", page_lang(request)))
