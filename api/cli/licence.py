"""``pmatch licence-request PATENT_ID --enterprise NAME --out notice.docx|.pdf|.md``: the notice that takes an open
licence (see ``matcher.licence``); a patent without an open-licence declaration is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import check_lang, console, existing_workspace, fail
from api.cli.options import HomeOpt, LangOpt, h
from matcher.i18n import text
from matcher.licence import Licensee, NotOpenLicence, build_notice, notice_format, render
from matcher.records import Patent


def licence_request(
    patent_id: Annotated[str, typer.Argument(help=h("licence.licence_request.patent_id"))],
    enterprise: Annotated[str, typer.Option(help=h("licence.licence_request.enterprise"))],
    out: Annotated[Path, typer.Option("--out", "-o", help=h("licence.licence_request.out"))],
    credit_code: Annotated[str | None, typer.Option(help=h("licence.licence_request.credit_code"))] = None,
    address: Annotated[str | None, typer.Option(help=h("licence.licence_request.address"))] = None,
    contact: Annotated[str | None, typer.Option(help=h("licence.licence_request.contact"))] = None,
    phone: Annotated[str | None, typer.Option(help=h("licence.licence_request.phone"))] = None,
    email: Annotated[str | None, typer.Option(help=h("licence.licence_request.email"))] = None,
    home: HomeOpt = None,
    lang: LangOpt = "zh",
) -> None:
    """Write the notice an enterprise sends the patentee to take a patent's declared open licence."""
    lang = check_lang(lang)
    try:
        notice_format(out)
    except NotOpenLicence as exc:
        raise fail(exc.message(lang), 2, lang) from None
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        patent = store.get("patents", patent_id)
    if not isinstance(patent, Patent):
        raise fail(text("docking.licence.unknown", lang, id=patent_id), 1, lang)
    try:
        notice = build_notice(patent, Licensee(enterprise, credit_code, address, contact, phone, email), lang)
    except NotOpenLicence as exc:
        raise fail(exc.message(lang), 1, lang) from None
    render(notice, out)
    console.print(text("cli.wrote", lang, path=str(out)), highlight=False)
