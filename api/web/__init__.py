"""The web page: server-rendered HTML for SME engineers, tech-transfer officers and event organisers.

``mount(app)`` adds the pages (``api.web.router``) and their static files to the FastAPI application that serves the
JSON API, so both share one ``Service`` (searcher, snapshots, keys, reindexer) and every page calls the same
functions the JSON endpoints call (``api.web.backend``). Pages work without JavaScript; ``static/app.js`` only
adds conveniences. Strings come from ``matcher/messages/web.yaml`` through ``matcher.i18n``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")


def mount(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their assets at ``/static`` (once per application)."""
    from api.web.jobs import Jobs
    from api.web.router import on_csrf_error, on_key_needed, router
    from api.web.security import CsrfError, KeyNeeded

    if getattr(app.state, "web_jobs", None) is not None:
        return
    app.state.web_jobs = Jobs()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(CsrfError, on_csrf_error)
    app.add_exception_handler(KeyNeeded, on_key_needed)
