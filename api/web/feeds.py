"""The page's feeds section (``/feeds``): an enterprise's or a holder's standing matches, newest page by page.

It reads the same feed as ``GET /v1/feeds/{enterprise,holder}/{name}`` (``matcher.feeds.read_feed``); "load more"
follows the page's opaque cursor, so nothing is shown twice or skipped.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.web.backend import Service, get_service
from api.web.render import page_lang, render
from matcher.feeds import BadCursor, Owner, feed_owners, read_feed
from matcher.i18n import text

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]
PAGE = 25


@router.get("/feeds", response_class=HTMLResponse)
def feeds_page(request: Request, service: ServiceDep) -> HTMLResponse:
    params = request.query_params
    owner_type: Owner = "holder" if params.get("owner_type") == "holder" else "enterprise"
    name = (params.get("name") or "").strip()[:2000]
    cursor = params.get("cursor") or None
    store = service.searcher.store
    page, problem = None, None
    if name:
        try:
            page = read_feed(store, owner_type, name, cursor, limit=PAGE)
        except BadCursor as exc:
            problem = text("docking.feed.bad_cursor", page_lang(request), reason=str(exc))
    owners = {"enterprise": feed_owners(store, "enterprise", 20), "holder": feed_owners(store, "holder", 20)}
    return render(request, "feeds.html", status=422 if problem else 200, owner_type=owner_type, name=name,
                  page=page, problem=problem, owners=owners, cursor=cursor)
