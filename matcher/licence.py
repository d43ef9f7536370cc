"""The notice an SME sends a patentee to take an open licence (专利开放许可实施通知书): DOCX, PDF or Markdown.

Under Article 51 of the Chinese Patent Law a patentee may declare that anyone may exploit the patent on published
terms (royalty and its payment, and the term); an entity that wants the licence notifies the patentee in writing
and pays on those terms. Only a patent whose record declares an open licence (``open_licence`` true) with its
terms (``price``: the declared royalty, ``licence_term``: the term) can be taken so; any other is refused with a
clear zh/en message (``NotOpenLicence``).

The notice is filled from the record (number, application numbers, title, holder, royalty, term, where the
declaration was published) and the enterprise's details, in Chinese by default (``lang="en"`` for English), all
labels from the catalogue. DOCX is written with python-docx; PDF with fpdf2, embedding (a subset of) Noto Sans CJK
from the ``cvttf-notosanscjk-regular`` package, so the file shows Chinese on any reader. Files are written to a
temporary name and renamed: a failed render leaves no half file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from matcher.i18n import Lang, LocalisedError, text
from matcher.records import Patent

FORMATS = (".docx", ".pdf", ".md")


class NotOpenLicence(LocalisedError, ValueError):
    """The patent cannot be taken under an open licence; ``message(lang)`` says why."""


@dataclass
class Licensee:
    """The enterprise taking the licence."""

    name: str
    credit_code: str | None = None
    address: str | None = None
    contact: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass
class Notice:
    lang: Lang
    title: str
    to: str
    body: str
    patent_rows: list[tuple[str, str]]
    licensee_rows: list[tuple[str, str]]
    closing: str
    signature: str
    date_line: str

    def lines(self) -> list[str]:
        """The notice as plain text lines (what every format shows)."""
        out = [self.title, self.to, self.body, text("docking.licence.patent", self.lang)]
        out += [f"{k}: {v}" for k, v in self.patent_rows]
        out.append(text("docking.licence.licensee", self.lang))
        out += [f"{k}: {v}" for k, v in self.licensee_rows]
        return [*out, self.closing, self.signature, self.date_line]


def check_open_licence(patent: Patent) -> None:
    """Refuse a patent that has no open-licence declaration, or whose declaration lacks its terms."""
    if patent.open_licence is not True:
        raise NotOpenLicence("docking.licence.not_open", id=patent.id)
    missing = [name for name, value in (("price", patent.price), ("licence_term", patent.licence_term)) if not value]
    if missing:
        raise NotOpenLicence("docking.licence.no_terms", id=patent.id,
                             missing=" / ".join({"price": "许可使用费 royalty (price)",
                                                 "licence_term": "许可期限 term (licence_term)"}[m] for m in missing))


def build_notice(patent: Patent, licensee: Licensee, lang: Lang = "zh", on: date | None = None) -> Notice:
    """The notice's content for ``patent`` and ``licensee`` (refused if the patent has no open licence)."""
    check_open_licence(patent)
    if not licensee.name.strip():
        raise NotOpenLicence("docking.licence.no_enterprise")
    none = text("docking.licence.not_given", lang)
    sep = "、" if lang == "zh" else "; "
    holder = sep.join(patent.applicants) if patent.applicants else none
    day = (on or datetime.now(UTC).date()).isoformat()

    def row(key: str, value: str | None) -> tuple[str, str]:
        return text(f"docking.licence.{key}", lang), value or none

    patent_rows = [row("number", patent.id), row("application", sep.join(patent.application_numbers) or None),
                   row("patent_title", patent.title or None), row("holder", holder),
                   row("royalty", patent.price), row("term", patent.licence_term)]
    if patent.source:
        patent_rows.append((text("docking.licence.source", lang, source="").rstrip("：: "), patent.source))
    licensee_rows = [row("enterprise", licensee.name), row("credit_code", licensee.credit_code),
                     row("address", licensee.address), row("contact", licensee.contact),
                     row("phone", licensee.phone), row("email", licensee.email)]
    return Notice(lang=lang, title=text("docking.licence.title", lang), to=text("docking.licence.to", lang,
                                                                                 holder=holder),
                  body=text("docking.licence.body", lang), patent_rows=patent_rows, licensee_rows=licensee_rows,
                  closing=text("docking.licence.closing", lang),
                  signature=text("docking.licence.signature", lang, enterprise=licensee.name),
                  date_line=text("docking.licence.date", lang, date=day))


def notice_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise NotOpenLicence("docking.licence.bad_format", suffix=suffix or "(none)")
    return suffix


def render(notice: Notice, path: str | Path) -> Path:
    """Write ``notice`` to ``path`` as .docx, .pdf or .md (by its extension)."""
    path = Path(path)
    suffix = notice_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        {".docx": _docx, ".pdf": _pdf, ".md": _markdown}[suffix](notice, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_bytes(notice: Notice, suffix: str) -> bytes:
    """The notice rendered as ``suffix`` (.docx, .pdf, .md), in memory (for the HTTP endpoint)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pmatch-notice-") as tmp:
        return render(notice, Path(tmp) / f"notice{notice_format('x' + suffix)}").read_bytes()


def _markdown(notice: Notice, path: Path) -> None:
    def table(rows: list[tuple[str, str]]) -> list[str]:
        cells = [(k.replace("|", "\\|"), v.replace("|", "\\|").replace("\n", " ")) for k, v in rows]
        return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in cells)]

    lines = [f"# {notice.title}", "", notice.to, "", notice.body, "",
             f"## {text('docking.licence.patent', notice.lang)}", "", *table(notice.patent_rows), "",
             f"## {text('docking.licence.licensee', notice.lang)}", "", *table(notice.licensee_rows), "",
             notice.closing, "", notice.signature, "", notice.date_line, ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _docx(notice: Notice, path: Path) -> None:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "SimSun"
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "宋体")  # Chinese runs too
    heading = doc.add_heading(notice.title, level=1)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(notice.to)
    doc.add_paragraph(notice.body)
    for caption, rows in ((text("docking.licence.patent", notice.lang), notice.patent_rows),
                          (text("docking.licence.licensee", notice.lang), notice.licensee_rows)):
        doc.add_heading(caption, level=2)
        grid = doc.add_table(rows=0, cols=2)
        grid.style = "Table Grid"
        for key, value in rows:
            cells = grid.add_row().cells
            cells[0].text, cells[1].text = key, value
    doc.add_paragraph(notice.closing)
    doc.add_paragraph(notice.signature).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    doc.add_paragraph(notice.date_line).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    doc.core_properties.title = notice.title
    doc.save(str(path))


def cjk_font() -> Path:
    """Noto Sans CJK (OpenType) from the ``cvttf-notosanscjk-regular`` package."""
    import cvttf_NotoSansCJK_Regular as font_package

    return Path(font_package.get_TTF_path())


def _pdf(notice: Notice, path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(notice.title)
    pdf.add_font("cjk", fname=str(cjk_font()))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.multi_cell(0, 10, notice.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("cjk", size=11)
    for para in (notice.to, notice.body):
        pdf.multi_cell(0, 7, para, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    for caption, rows in ((text("docking.licence.patent", notice.lang), notice.patent_rows),
                          (text("docking.licence.licensee", notice.lang), notice.licensee_rows)):
        pdf.set_font("cjk", size=13)
        pdf.multi_cell(0, 9, caption, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=10.5)
        with pdf.table(col_widths=(35, 135), first_row_as_headings=False) as table:
            for key, value in rows:
                r = table.row()
                r.cell(key)
                r.cell(value)
        pdf.ln(3)
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(0, 7, notice.closing, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    for line in (notice.signature, notice.date_line):
        pdf.multi_cell(0, 7, line, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
