"""Loading records from the browser, behind the API key: ``/login`` checks a key once per browser session and
keeps it in an HttpOnly cookie; ``/upload`` takes a patents or demands file through the JSON API's ingest path
(same size limit, same validation as ``pmatch ingest``: errors with file, line and field; nothing written unless
every record is valid), then asks for the index rebuild and shows when the new records become searchable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web.backend import ApiError, Service, get_service, ingest_bytes, safe_filename, speaking
from api.web.forms import posted
from api.web.render import link, page_lang, render
from api.web.security import forget_key, presented_key, store_key
from matcher.i18n import Message, text
from matcher.store import Collection

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]


def _signed_in(service: Service, request: Request) -> bool:
    key = presented_key(request)
    return key is not None and service.keys.verify(key) is not None


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, service: ServiceDep) -> HTMLResponse:
    return render(request, "upload.html", key_ok=_signed_in(service, request), errors=[], message=None, report=None,
                  status_link=None, kind="patents")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, service: ServiceDep) -> Response:
    lang = page_lang(request)
    form = await posted(request)
    key = form.text("api_key", 200)
    if not key or service.keys.verify(key) is None:
        return render(request, "upload.html", status=401, key_ok=False, errors=[], report=None, status_link=None,
                      message=text("web.upload.bad_key", lang), kind="patents")
    response = RedirectResponse(link("/upload", lang), status_code=303)
    store_key(request, response, key)
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    await posted(request)
    response = RedirectResponse(link("/upload", page_lang(request)), status_code=303)
    forget_key(response)
    return response


@router.post("/upload", response_class=HTMLResponse)
async def upload(request: Request, service: ServiceDep) -> HTMLResponse:
    lang = page_lang(request)
    form = await posted(request)
    kind: Collection = "demands" if form.text("kind") == "demands" else "patents"
    context = {"kind": kind, "errors": [], "report": None, "status_link": None, "message": None}
    try:
        service.check_key(presented_key(request))
    except ApiError:
        response = render(request, "upload.html", status=401, key_ok=False, **{
            **context, "message": text("web.upload.bad_key", lang)})
        forget_key(response)
        return response
    upload = await form.file("file")
    if upload is None:
        return render(request, "upload.html", status=422, key_ok=True,
                      **{**context, "message": text("web.upload.no_file", lang)})
    name, data = upload
    with speaking(lang):  # the API's messages in the page's language, not the browser header's
        try:
            name = safe_filename(name)  # as the API does: the uploaded name never becomes a path
            if not data:
                raise ApiError(422, "invalid_upload", Message("http.empty_upload"), "file")
            answer = await run_in_threadpool(ingest_bytes, service, kind, data, name, False, False, False, {})
        except ApiError as exc:
            return render(request, "upload.html", status=exc.status, key_ok=True,
                          **{**context, "message": exc.message, "errors": exc.details})
    changed = bool(answer.report.inserted or answer.report.updated)
    if changed:
        ticket = service.reindexer.request([kind])[kind]
        context["status_link"] = link(f"/upload/status/{kind}/{ticket}", lang)
    return render(request, "upload.html", key_ok=True, **{**context, "report": answer.report})


@router.get("/upload/status/{kind}/{ticket}", response_class=HTMLResponse)
def index_status(request: Request, service: ServiceDep, kind: Collection, ticket: int) -> HTMLResponse:
    """Whether the rebuild asked for after an upload has published (then the new records are searchable)."""
    status = service.reindexer.status()[kind]
    searchable = status["built"] >= ticket
    failed = not searchable and status["state"] in ("failed", "idle") and status["last_error"]
    return render(request, "index_status.html", kind=kind, searchable=searchable, failed=failed, build=status)
