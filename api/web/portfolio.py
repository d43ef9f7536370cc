"""The tech-transfer office's page: pick an applicant (autocomplete over the stored applicants) or give patent ids
(typed or as a file, one per line) and get the enterprises to approach, ranked, each with the demands and the
patents that support them (``matcher.push``), computed in the background; download XLSX or CSV."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web.backend import Service, get_service
from api.web.downloads import Format, table_download
from api.web.events import jobs
from api.web.forms import posted
from api.web.render import link, page_lang, render
from matcher.export import push_table
from matcher.i18n import text
from matcher.matching import UnknownRecord, portfolio_ids
from matcher.push import PushOptions, build_push

router = APIRouter(include_in_schema=False)
ServiceDep = Annotated[Service, Depends(get_service)]
APPLICANTS = 500  # offered for autocomplete (most patents first)
MAX_ID_FILE = 256 * 1024


def _form(request: Request, service: Service, status: int = 200, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None) -> HTMLResponse:
    applicants = service.searcher.store.facet_counts("patents", "applicants", APPLICANTS)
    shown = {"applicant": "", "patent_ids": request.query_params.get("patent_ids", ""), "k": "20",
             "per_enterprise": "5", **(values or {})}
    return render(request, "portfolio.html", status=status, applicants=applicants, values=shown,
                  errors=errors or {})


@router.get("/portfolio", response_class=HTMLResponse)
def portfolio_page(request: Request, service: ServiceDep) -> HTMLResponse:
    return _form(request, service)


@router.post("/portfolio", response_class=HTMLResponse)
async def start_push(request: Request, service: ServiceDep) -> Response:
    lang = page_lang(request)
    form = await posted(request)
    values = {k: form.text(k, 20_000) for k in ("applicant", "patent_ids")}
    values.update({k: form.text(k) or default for k, default in (("k", "20"), ("per_enterprise", "5"))})
    k = form.integer("k", 20, 1, 200, text("web.portfolio.bad_k", lang)) or 20
    per_enterprise = form.integer("per_enterprise", 5, 1, 50, text("web.portfolio.bad_k", lang)) or 5
    typed = values["patent_ids"]
    upload = await form.file("ids_file")
    if upload is not None:
        name, data = upload
        try:
            typed = data[:MAX_ID_FILE].decode("utf-8-sig")
        except UnicodeDecodeError:
            form.errors["ids_file"] = text("web.portfolio.not_text", lang, name=name)
    ids = [i for i in re.split(r"[\s,，;；]+", typed) if i]
    applicant = values["applicant"] or None
    if bool(ids) == bool(applicant) and "ids_file" not in form.errors:
        form.errors["applicant"] = text("web.portfolio.one_of", lang)
    if not form.errors:
        try:
            portfolio = portfolio_ids(service.searcher, None if ids else applicant, ids or None)
            if len(portfolio) > service.settings.max_portfolio_patents:
                form.errors["applicant"] = text("web.portfolio.too_many", lang, count=len(portfolio),
                                                limit=service.settings.max_portfolio_patents)
        except UnknownRecord as exc:
            form.errors["patent_ids" if ids else "applicant"] = exc.message(lang)
    if form.errors:
        return _form(request, service, 422, values, form.errors)
    options = PushOptions(k=k, per_enterprise=per_enterprise)
    label = applicant if not ids else text("web.portfolio.n_patents", lang, count=len(portfolio))
    job = jobs(request).submit("push", label or "", lambda progress: build_push(
        service.searcher, None, portfolio, options, progress), {"patents": len(portfolio)})
    return RedirectResponse(link(f"/portfolio/jobs/{job.id}", lang), status_code=303)


@router.get("/portfolio/jobs/{job_id}", response_class=HTMLResponse)
def push_job(request: Request, job_id: str) -> HTMLResponse:
    job = jobs(request).get(job_id, "push")
    if job is None:
        return render(request, "error.html", status=404, message=text("web.error.no_job", page_lang(request)))
    return render(request, "portfolio_job.html", job=job)


@router.get("/portfolio/jobs/{job_id}/push.{fmt}")
def push_download(request: Request, job_id: str, fmt: Format) -> Response:
    lang = page_lang(request)
    job = jobs(request).get(job_id, "push")
    if job is None or job.state != "done":
        return render(request, "error.html", status=404, message=text("web.error.no_job", lang))
    return table_download(push_table(job.result, lang), "push", fmt, lang)
