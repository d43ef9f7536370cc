"""Writing shortlists and push lists as CSV, XLSX or JSON (chosen by the file's extension).

* **XLSX**: one sheet per chain segment (a push has one sheet), named after the segment, with the columns a
  company reads (``MAIN``: who, what, the abstract, legal status, IPC, dates, licence terms, and why it matches
  in plain sentences), names and values in Chinese (``lang="zh"``, the default) or English, a bold frozen header
  and an auto filter; then a 评分明细 / details sheet with the ranker's internals per pair (``DETAILS``), and a
  运行信息 / Run info sheet with the run's parameters, counts, timings and warnings.
* **CSV**: the main columns of every row in one table (the segment is a column), UTF-8 with a byte-order mark so
  that Excel opens Chinese text correctly.
* **JSON**: the whole result, rows with their nested explanations and per-retriever scores; keys in English.

No cell is ever a live formula: XLSX text cells are written as strings, and CSV text starting with
``= + - @``, tab or CR gets a leading apostrophe. Labels come from ``matcher/messages/export.yaml``.
Files are written to a temporary name and renamed, so a failed export never leaves half a file.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from matcher.i18n import LocalisedError, Message, catalogue, label, text
from matcher.pairs import DERIVED, INFERRED_SHOWN, excerpt
from matcher.push import Push
from matcher.records import Demand, Patent
from matcher.results import Result
from matcher.shortlist import Shortlist

Lang = Literal["zh", "en"]
FORMATS = ("csv", "xlsx", "json")
_SHEET_BAD = str.maketrans({c: "_" for c in "[]:*?/\\"})
MAX_SHEET = 31
ABSTRACT_CHARS = 160

# What a company reads (the main sheet), in column order. Column names: ``export.col.<key>`` in the catalogue.
MAIN = ("chain", "segment", "enterprise_rank", "demand_rank", "rank", "demand_id", "demand_title", "enterprise",
        "demand_industry", "demand_modes", "patent_id", "patent_title", "patent_abstract", "holder",
        "applicant_type", "inferred", "legal_status", "patent_type", "granted", "filing_year", "ipc",
        "application_date", "publication_date", "patent_kind", "open_licence", "price", "maturity", "offer_modes",
        "compatible_modes", "why", "near_duplicates")
# The ranker's internals, on a separate sheet (评分明细 / details), keyed by the pair.
DETAILS = ("demand_id", "patent_id", "enterprise_key", "enterprise_score", "demand_score", "fit", "score", "fusion",
           "bm25_rank", "bm25_score", "dense_rank", "dense_score", "shared_terms", "snippet", "closest_sentence",
           "closest_similarity", "relevance", "title_coverage", "topic_coverage", "pair_confidence", "reciprocal_rank",
           "patent_language",
           "demand_selected_by", "patent_selected_by")
# Shown as 未提供 / "not provided" when empty: a reader must see that the data has none, not a blank.
_PROVIDED = {"enterprise", "holder", "legal_status", "price", "maturity", "demand_industry", "application_date",
             "patent_abstract"}
_VALUES = {"legal_status": "export.legal.", "applicant_type": "export.applicant.", "patent_type": "export.type."}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    """What an export writes: sheets of flat rows (main columns and details columns), run information, and the
    full document for JSON."""

    sheets: list[tuple[str, list[dict[str, Any]]]]
    columns: list[str]
    info: list[tuple[str, Any]]
    document: dict[str, Any]
    details: list[str] = field(default_factory=list)


class UnknownFormat(LocalisedError, ValueError):
    """An output path whose extension is not one of ``FORMATS``."""


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UnknownFormat("export.unknown_format", path=str(path), suffix=suffix or Message("export.no_suffix"))
    return suffix


def header(key: str, lang: Lang) -> str:
    return label(f"export.col.{key}", lang, key)


def cell(value: Any, lang: Lang, key: str = "") -> Any:
    """A row value as a spreadsheet shows it: localised, lists joined, never None."""
    if key in _VALUES and isinstance(value, str) and f"{_VALUES[key]}{value}" in catalogue():
        return text(f"{_VALUES[key]}{value}", lang)
    if value is None or value == "" or value == []:
        return text("common.not_provided", lang) if key in _PROVIDED else ""
    if isinstance(value, bool):
        return text("common.yes" if value else "common.no", lang)
    if isinstance(value, int | float | str):
        return value
    if key == "inferred" and isinstance(value, list):
        return text("export.term_sep", lang).join(header(f, lang) if f != "applicants" else header("holder", lang)
                                                   for f in value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def why(row: dict[str, Any], lang: Lang) -> str:
    """The explanation as plain sentences: the shared technical terms, then the patent's closest sentence, then (a
    push row) where the demand's own search of the patent corpus ranks the patent (``matching.reciprocal_ranks``)."""
    terms = [t for t in str(row.get("shared_terms") or "").split("; ") if t]
    out = text("export.why.terms", lang, terms=text("export.term_sep", lang).join(terms[:8])) if terms else ""
    sentence = row.get("closest_sentence") or ""
    if sentence:
        out += text("export.why.sentence", lang, sentence=sentence)
    if row.get("reciprocal_rank"):
        out += text("export.why.reciprocal", lang, rank=row["reciprocal_rank"])
    return out.strip() or (text("export.why.none", lang) if row.get("explanation") else "")


def _present(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    have = {k for row in rows for k in row}
    return [k for k in keys if k in have or (k == "why" and "shared_terms" in have)]


def _main_rows(rows: list[dict[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    return [{**r, "why": why(r, lang)} for r in rows]


def shortlist_table(shortlist: Shortlist, lang: Lang = "zh") -> Table:
    rows = _main_rows([{**r, "segment": r["segment"] if lang == "zh" else r["segment_en"]}
                       for r in shortlist.rows], lang)
    sheets = [(seg.name if lang == "zh" else seg.label_en, [r for r in rows if r["segment_id"] == seg.id])
              for seg in shortlist.chain.segments]
    columns = _present(rows, MAIN) or [k for k in MAIN if k not in ("enterprise_rank", "demand_rank")]
    s = shortlist.summary
    options = {**vars(shortlist.options), "mode": shortlist.options.mode or s.get("mode")}
    info: list[tuple[str, Any]] = [
        ("chain", shortlist.chain.name if lang == "zh" else (shortlist.chain.name_en or shortlist.chain.name)),
        ("chain_file", shortlist.chain.source),
        *options.items(),
        *((k, v) for k, v in s.items() if k not in ("segments", "warnings", "warning_messages", "timings")
          and k not in options),
        *((f"{text('export.info.segment', lang)} {seg['name'] if lang == 'zh' else seg['name_en']}",
           text("export.info.segment_line", lang, patents=seg["patents"], demands=seg["demands"], rows=seg["rows"],
                served=seg["demands_served"])) for seg in s["segments"]),
        *((f"{text('export.info.time', lang)} {k}", v) for k, v in s["timings"].items()),
        *(("warning", Message.from_dict(w).text(lang)) for w in s["warning_messages"]),
    ]
    return Table(sheets, columns, _localised(info, lang), shortlist.to_dict(), _present(rows, DETAILS))


_RULES = {"first applicant; a patent with no applicant is its own holder": "export.rule.holder",
          "a demand with no enterprise stands alone, keyed '(demand ID)'": "export.rule.enterprise"}


def _localised(info: list[tuple[str, Any]], lang: Lang) -> list[tuple[str, Any]]:
    out = []
    for key, value in info:
        shown = label(f"export.info.{key}", lang, key)
        if isinstance(value, str) and value in _RULES:
            value = text(_RULES[value], lang)
        out.append((shown, value))
    return out


def push_table(push: Push, lang: Lang = "zh") -> Table:
    rows = _main_rows(push.rows, lang)
    info: list[tuple[str, Any]] = [("portfolio", push.label), ("patents", len(push.portfolio)),
                                   *((k, v) for k, v in vars(push.options).items() if k != "filters"),
                                   ("demand_filters", push.options.filters.model_dump_json(exclude_defaults=True)),
                                   *((k, v) for k, v in push.summary.items() if k not in ("timings", "portfolio",
                                                                                          "patents")),
                                   *((f"{text('export.info.time', lang)} {k}", v)
                                     for k, v in push.summary["timings"].items())]
    return Table([(text("export.sheet.push", lang), rows)], _present(rows, MAIN), _localised(info, lang),
                 push.to_dict(), _present(rows, DETAILS))


def record_fields(record: Patent | Demand) -> dict[str, Any]:
    """The export columns of one record on its own (a search or match result, ``pmatch show``)."""
    if isinstance(record, Demand):
        return {"demand_id": record.id, "demand_title": record.title, "enterprise": record.enterprise or "",
                "demand_industry": record.industry or "", "demand_modes": "、".join(record.cooperation_modes)}
    return {"patent_id": record.id, "patent_title": record.title or record.abstract[:80],
            "patent_abstract": excerpt(record.abstract), "holder": record.applicants[0] if record.applicants else "",
            "applicant_type": record.applicant_type, "legal_status": record.legal_status,
            **{k: getattr(record, k) for k in DERIVED if getattr(record, k, None) is not None},
            "inferred": [f for f in record.inferred if f in INFERRED_SHOWN],
            "ipc": list(record.ipc[:5]), "application_date": record.application_date.isoformat()
            if record.application_date else "", "publication_date": record.publication_date.isoformat()
            if record.publication_date else "", "patent_kind": record.kind or "", "open_licence": record.open_licence,
            "price": record.price or "", "maturity": record.maturity or "",
            "offer_modes": "、".join(record.cooperation_modes), "patent_language": record.language}


def results_export(title: str, results: list[Result], info: dict[str, Any], lang: Lang = "zh") -> Table:
    """Search or match results as an export: one sheet of the records (ranked), the ranker's scores on the
    details sheet, the query and options on the run-info sheet."""
    rows = []
    for r in results:
        dense = r.retrievers.get("dense", {})
        rows.append({"rank": r.rank, **record_fields(r.record), "score": round(r.score, 6),
                     "dense_score": dense.get("score"), "fusion": r.retrievers.get("fused", {}).get("method", ""),
                     **({"near_duplicates": "、".join(r.duplicates)} if r.duplicates else {})})
    doc = {"title": title, **info, "results": [r.to_dict() for r in results]}
    return Table([(title, rows)], _present(rows, MAIN), [(k, v) for k, v in info.items()], doc,
                 [k for k in ("patent_id", "demand_id", "score", "dense_score", "fusion") if any(k in r for r in rows)])


# --- writers ----------------------------------------------------------------------------------------------
def write(table: Table, path: str | Path, lang: Lang = "zh") -> Path:
    """Write ``table`` to ``path`` in the format its extension names; returns the path."""
    path = Path(path)
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        {"csv": _write_csv, "xlsx": _write_xlsx, "json": _write_json}[fmt](table, tmp, lang)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_json(table: Table, path: Path, lang: Lang) -> None:
    path.write_text(json.dumps(table.document, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading apostrophe (OWASP's
    advice for CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_csv(table: Table, path: Path, lang: Lang) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([csv_safe(header(k, lang)) for k in table.columns])
        for _, rows in table.sheets:
            for row in rows:
                writer.writerow([csv_safe(cell(row.get(k), lang, k)) for k in table.columns])


def _append(sheet: Any, values: list[Any]) -> None:
    """Append a row whose text cells are strings, never formulas (openpyxl makes any text starting with = one)."""
    sheet.append(values)
    for c in sheet[sheet.max_row]:
        if isinstance(c.value, str):
            c.data_type = "s"


def sheet_title(name: str, taken: set[str]) -> str:
    """An Excel-safe, unique sheet name (<= 31 characters, none of []:*?/\\)."""
    base = name.translate(_SHEET_BAD).strip("'").strip() or "sheet"
    title, n = base[:MAX_SHEET], 2
    while title.casefold() in taken:
        suffix = f" ({n})"
        title, n = base[: MAX_SHEET - len(suffix)] + suffix, n + 1
    taken.add(title.casefold())
    return title


_WIDTHS = {"demand_title": 28, "patent_title": 36, "patent_abstract": 50, "why": 60, "shared_terms": 30,
           "snippet": 60, "closest_sentence": 50, "segment": 18, "near_duplicates": 24, "demand_selected_by": 24,
           "patent_selected_by": 24, "enterprise": 18, "holder": 18, "ipc": 14}
_WRAP = ("patent_abstract", "why", "snippet", "closest_sentence", "shared_terms")


def _write_xlsx(table: Table, path: Path, lang: Lang) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    bold = Font(bold=True)
    pages = [(name, rows, table.columns) for name, rows in table.sheets]
    if table.details:
        pages.append((text("export.sheet.details", lang), [r for _, rows in table.sheets for r in rows],
                      table.details))
    for name, rows, columns in pages:
        sheet = book.create_sheet(sheet_title(name, taken))
        _append(sheet, [header(k, lang) for k in columns])
        for row in rows:
            _append(sheet, [cell(row.get(k), lang, k) for k in columns])
        for i, key in enumerate(columns, 1):
            sheet.cell(row=1, column=i).font = bold
            sheet.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(key, 12)
            if key in _WRAP:
                for (c,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                    c.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.freeze_panes = "A2"
        if columns:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(1, len(rows) + 1)}"
    info = book.create_sheet(sheet_title(text("export.sheet.info", lang), taken))
    _append(info, [text("export.info.item", lang), text("export.info.value", lang)])
    info.cell(row=1, column=1).font = info.cell(row=1, column=2).font = bold
    for key, v in table.info:
        _append(info, [key, cell(v, lang)])
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 100
    book.save(path)
