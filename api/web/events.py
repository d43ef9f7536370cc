"""The event organiser's page: pick a shipped industrial chain or upload a chain YAML (its errors listed per key
path, as ``pmatch shortlist`` prints them), set the caps and the score floor, run the shortlist in the background
with live progress, preview each segment and download XLSX or CSV (``matcher.export``'s shortlist table)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web.backend import Service, get_service
from api.web.downloads import Format, table_download
from api.web.forms import posted
from api.web.jobs import Jobs
from api.web.render import link, page_lang, render
from matcher.chains import Chain, ChainError, load_chain, shipped_chains
from matcher.export import shortlist_table
from matcher.i18n import Message, text
from matcher.shortlist import ShortlistOptions, build_shortlist

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]
PREVIEW_ROWS = 5
MAX_CHAIN_BYTES = 1 * 2**20


def jobs(request: Request) -> Jobs:
    registry: Jobs = request.app.state.web_jobs
    return registry


def _shipped() -> list[tuple[str, str, str]]:
    """(file stem, Chinese name, English name) of each shipped chain."""
    out = []
    for path in shipped_chains():
        chain = load_chain(path)
        out.append((path.stem, chain.name, chain.name_en or chain.name))
    return out


def _form(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    values = {"chain": "", "per_demand": "5", "per_patent": "3", "per_holder": "", "min_score": "0"}
    values.update(context.pop("values", {}))  # type: ignore[arg-type]
    return render(request, "events.html", status=status, chains=_shipped(), values=values,
                  errors=context.pop("errors", {}), chain_errors=context.pop("chain_errors", []), **context)


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request) -> HTMLResponse:
    return _form(request)


@router.post("/events", response_class=HTMLResponse)
async def start_shortlist(request: Request, service: ServiceDep) -> Response:
    lang = page_lang(request)
    form = await posted(request)
    options = ShortlistOptions(
        per_demand=form.integer("per_demand", 5, 1, 100, text("web.events.bad_cap", lang)) or 5,
        per_patent=form.integer("per_patent", 3, 1, 100, text("web.events.bad_cap", lang)) or 3,
        per_holder=form.integer("per_holder", None, 1, 100, text("web.events.bad_cap", lang)),
        min_score=form.number("min_score", 0.0, 0.0, 10.0, text("web.events.bad_floor", lang)))
    values = {k: form.text(k) for k in ("chain", "per_demand", "per_patent", "per_holder", "min_score")}
    upload = await form.file("chain_file")
    chain_errors: list[str] = []
    chain = None
    try:
        if upload is not None:
            name, data = upload
            if len(data) > MAX_CHAIN_BYTES:
                raise ChainError(Message("web.events.too_big", name=name, limit=MAX_CHAIN_BYTES))
            chain = await run_in_threadpool(_load_uploaded, name, data)
        elif values["chain"] in {stem for stem, _, _ in _shipped()}:
            chain = load_chain(next(p for p in shipped_chains() if p.stem == values["chain"]))
        else:
            form.errors["chain"] = text("web.events.pick_chain", lang)
    except ChainError as exc:
        chain_errors = exc.message(lang).splitlines()
    if form.errors or chain_errors or chain is None:
        return _form(request, 422, values=values, errors=form.errors, chain_errors=chain_errors)
    label = chain.name if lang == "zh" else (chain.name_en or chain.name)
    job = jobs(request).submit("shortlist", label, lambda progress: build_shortlist(
        service.searcher, chain, options, progress), {"options": vars(options)})
    return RedirectResponse(link(f"/events/jobs/{job.id}", lang), status_code=303)


def _load_uploaded(name: str, data: bytes) -> Chain:
    safe = Path(name.replace("\\", "/")).name or "chain.yaml"
    with tempfile.TemporaryDirectory(prefix="pmatch-chain-") as folder:
        path = Path(folder) / safe
        path.write_bytes(data)
        return load_chain(path)


@router.get("/events/jobs/{job_id}", response_class=HTMLResponse)
def shortlist_job(request: Request, job_id: str) -> HTMLResponse:
    job = jobs(request).get(job_id, "shortlist")
    if job is None:
        return render(request, "error.html", status=404, message=text("web.error.no_job", page_lang(request)))
    preview = []
    if job.state == "done":
        for seg in job.result.summary["segments"]:
            preview.append((seg, job.result.segment_rows(seg["id"])[:PREVIEW_ROWS]))
    return render(request, "event_job.html", job=job, preview=preview)


@router.get("/events/jobs/{job_id}/shortlist.{fmt}")
def shortlist_download(request: Request, job_id: str, fmt: Format) -> Response:
    lang = page_lang(request)
    job = jobs(request).get(job_id, "shortlist")
    if job is None or job.state != "done":
        return render(request, "error.html", status=404, message=text("web.error.no_job", lang))
    return table_download(shortlist_table(job.result, lang), "shortlist", fmt, lang)
