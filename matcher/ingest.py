"""Reading patents and demands from JSONL, JSON, CSV (UTF-8 or GB18030) and XLSX files, all-or-nothing.

``read_file`` turns a file into validated records, or into errors that name the file, line and field.
``ingest_file`` then writes the records in one transaction. A batch with any bad row fails whole (nothing
is written) unless ``skip_invalid`` is set; then the bad rows go to a rejects file and the rest lands.

Foreign column headers are mapped to field names: Chinese headers such as 申请号, 名称, 摘要, 申请人, 主分类号
and 法律状态 map out of the box, and ``mapping`` adds more (``{"Patent No.": "id", "Notes": ""}``, where an
empty target means "ignore this column"). An unknown column is an error: it would otherwise be lost.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matcher.derive import derive
from matcher.records import Demand, Patent
from matcher.store import MODELS, BatchReport, Kind, Store

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_LINE_CHARS = 2_000_000
MAX_ERRORS_SHOWN = 20

# Header aliases (lower-cased, spaces removed) -> field. Same for both kinds where the field exists.
ALIASES: dict[Kind, dict[str, str]] = {
    "patents": {
        "id": "id", "申请号": "id", "公开号": "id", "公告号": "id", "公开(公告)号": "id", "专利号": "id",
        "publicationnumber": "id", "patentnumber": "id",
        "title": "title", "名称": "title", "专利名称": "title", "发明名称": "title", "标题": "title",
        "abstract": "abstract", "摘要": "abstract",
        "claims": "claims", "权利要求": "claims", "权利要求书": "claims", "主权项": "claims",
        "ipc": "ipc", "cpc": "ipc", "主分类号": "ipc", "分类号": "ipc", "ipc分类号": "ipc", "ipc主分类号": "ipc",
        "applicants": "applicants", "applicant": "applicants", "申请人": "applicants", "专利权人": "applicants",
        "申请(专利权)人": "applicants",
        "applicant_type": "applicant_type", "申请人类型": "applicant_type",
        "legal_status": "legal_status", "法律状态": "legal_status",
        "application_date": "application_date", "申请日": "application_date",
        "publication_date": "publication_date", "公开日": "publication_date", "公告日": "publication_date",
        "公开(公告)日": "publication_date",
        "open_licence": "open_licence", "open_license": "open_licence", "开放许可": "open_licence",
        "price": "price", "价格": "price", "许可费": "price", "交易价格": "price",
        "maturity": "maturity", "成熟度": "maturity", "技术成熟度": "maturity",
        "cooperation_modes": "cooperation_modes", "合作方式": "cooperation_modes",
        "kind": "kind", "专利类型": "kind", "类型": "kind",
        "industry": "industry", "行业": "industry", "所属行业": "industry",
        "tech_area": "tech_area", "技术领域": "tech_area",
        "keywords": "keywords", "关键词": "keywords",
        "language": "language", "语言": "language", "source": "source", "来源": "source",
        # fields matcher/derive.py fills (a record exported by patent-match carries them; derive re-derives them)
        "application_numbers": "application_numbers", "patent_type": "patent_type", "granted": "granted",
        "filing_year": "filing_year", "derived": "derived", "inferred": "inferred",
    },
    "demands": {
        "id": "id", "需求编号": "id", "编号": "id",
        "title": "title", "需求名称": "title", "名称": "title", "标题": "title",
        "description": "description", "需求描述": "description", "描述": "description", "需求内容": "description",
        "内容": "description",
        "enterprise": "enterprise", "企业": "enterprise", "企业名称": "enterprise", "需求方": "enterprise",
        "industry": "industry", "行业": "industry", "所属行业": "industry",
        "region": "region", "地区": "region", "所在地区": "region", "省份": "region",
        "cooperation_modes": "cooperation_modes", "合作方式": "cooperation_modes",
        "budget": "budget", "预算": "budget", "投入资金": "budget",
        "posted_date": "posted_date", "发布日期": "posted_date", "发布时间": "posted_date",
        "expiry_date": "expiry_date", "截止日期": "expiry_date", "有效期至": "expiry_date",
        "language": "language", "语言": "language", "source": "source", "来源": "source",
    },
}
LIST_FIELDS = {"ipc", "applicants", "cooperation_modes", "keywords"}
DATE_FIELDS = {"application_date", "publication_date", "posted_date", "expiry_date"}
_LIST_SPLIT = {
    "ipc": re.compile(r"[;；,，|\s]+"),
    "applicants": re.compile(r"[;；|]+"),
    "cooperation_modes": re.compile(r"[;；,，、|/]+"),
    "keywords": re.compile(r"[;；,，、|]+"),
}
_LEGAL = {
    "有效": "valid", "授权": "valid", "专利权维持": "valid", "valid": "valid", "active": "valid", "granted": "valid",
    "审中": "pending", "实审": "pending", "公开": "pending", "实质审查": "pending", "pending": "pending",
    "失效": "invalid", "无效": "invalid", "驳回": "invalid", "撤回": "invalid", "届满": "invalid",
    "未缴年费": "invalid", "invalid": "invalid", "expired": "invalid", "lapsed": "invalid",
}
_APPLICANT_TYPE = {
    "高校": "university", "大学": "university", "院校": "university", "university": "university",
    "科研院所": "institute", "研究所": "institute", "研究院": "institute", "institute": "institute",
    "企业": "company", "公司": "company", "company": "company", "个人": "individual", "individual": "individual",
}
_BOOL = {"是": True, "否": False, "yes": True, "no": False, "true": True, "false": False, "y": True, "n": False,
         "1": True, "0": False}
_LANGUAGE = {"中文": "zh", "zh": "zh", "chinese": "zh", "英文": "en", "en": "en", "english": "en"}
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class RowError:
    """One reason a row (or the file) was refused."""

    file: str
    line: int | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class IngestError(Exception):
    """A batch was refused. ``errors`` lists every reason found (the message shows the first few)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:MAX_ERRORS_SHOWN])
        more = f"\n... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        super().__init__(f"{shown}{more}\nnothing was written")


@dataclass
class ParsedFile:
    records: list[Patent | Demand]
    errors: list[RowError]
    rejects: list[dict[str, Any]]
    encoding: str | None


# --- reading raw rows -------------------------------------------------------------------------------------
def _decode(data: bytes, name: str) -> tuple[str, str]:
    if b"\x00" in data[:65536]:
        raise IngestError([RowError(name, None, None, "binary data (NUL bytes): not a text file")])
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\r\n\t")
        if controls > max(8, len(text[:65536]) // 100):
            raise IngestError([RowError(name, None, None, "binary data (control characters): not a text file")])
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(
            [RowError(name, line, None, f"not UTF-8 or GB18030 text (bad byte at offset {exc.start})")]
        ) from None
    raise AssertionError("unreachable")


def _rows_jsonl(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            yield line_no, RowError(name, line_no, None, f"line longer than {MAX_LINE_CHARS:,} characters")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, RowError(name, line_no, None, f"invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield line_no, RowError(name, line_no, None, f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield line_no, obj


def _rows_json(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, RowError(name, exc.lineno, None, f"invalid JSON ({exc.msg} at column {exc.colno})")
        return
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        yield 1, RowError(name, 1, None, "expected a JSON array of objects")
        return
    for i, obj in enumerate(data, 1):  # "line" = item number for a JSON array
        yield i, obj if isinstance(obj, dict) else RowError(name, i, None, "expected a JSON object")


def _rows_csv(text: str, name: str, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    line_no = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, RowError(name, reader.line_num, None, f"malformed CSV ({exc})")
            return
        start, line_no = line_no + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            yield start, RowError(name, start, None, f"{len(row)} cells but the header has {len(header)} columns")
            continue
        yield start, dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))


def _rows_xlsx(data: bytes, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import openpyxl  # imported here: only XLSX ingest needs it

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise IngestError([RowError(name, None, None, "not an XLSX workbook (not a zip archive)")])
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise IngestError([RowError(name, None, None, f"unreadable XLSX workbook ({exc})")]) from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    try:
        header = ["" if h is None else str(h).strip() for h in next(rows)]
    except StopIteration:
        return
    while header and not header[-1]:
        header.pop()
    for line_no, row in enumerate(rows, 2):
        cells = list(row)
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        extra = [c for c in cells[len(header):] if c is not None and str(c).strip()]
        if extra:
            yield line_no, RowError(name, line_no, None, "cells outside the header's columns")
            continue
        yield line_no, dict(zip(header, cells[: len(header)] + [None] * (len(header) - len(cells)), strict=True))


def _raw_rows(path: Path) -> tuple[Iterator[tuple[int, dict[str, Any] | RowError]], str | None, bool]:
    """(rows, encoding, tabular) for a file, by its extension."""
    name = str(path)
    if not path.is_file():
        raise IngestError([RowError(name, None, None, "no such file")])
    size = path.stat().st_size
    if size == 0:
        raise IngestError([RowError(name, None, None, "empty file: no records")])
    if size > MAX_FILE_BYTES:
        raise IngestError([RowError(name, None, None, f"file larger than {MAX_FILE_BYTES // 2**20} MiB")])
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _rows_xlsx(data, name), None, True
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt"):
        raise IngestError([RowError(name, None, None, f"unsupported file type {suffix!r} (jsonl, json, csv, xlsx)")])
    text, encoding = _decode(data, name)
    if suffix in (".jsonl", ".ndjson"):
        return _rows_jsonl(text, name), encoding, False
    if suffix == ".json":
        return _rows_json(text, name), encoding, False
    delimiter = "\t" if suffix == ".tsv" else ","
    return _rows_csv(text, name, delimiter), encoding, True


# --- rows to records --------------------------------------------------------------------------------------
def _alias_key(header: str) -> str:
    return re.sub(r"\s+", "", header).lower()


def _column_map(kind: Kind, columns: list[str], mapping: dict[str, str], name: str, line: int) -> (
        dict[str, str | None] | RowError):
    fields = set(MODELS[kind].model_fields)
    user = {_alias_key(k): v for k, v in mapping.items()}
    out: dict[str, str | None] = {}
    for col in columns:
        key = _alias_key(col)
        target = user.get(key, ALIASES[kind].get(key))
        if target == "" or target == "-":
            out[col] = None
            continue
        if target is None or target not in fields:
            hint = f" (mapped to unknown field {target!r})" if target else ""
            return RowError(name, line, col, f"unknown column{hint}; known fields: {', '.join(sorted(fields))}; "
                                              "map it with --map 'COLUMN=field' or ignore it with --map 'COLUMN='")
        if target in out.values():
            return RowError(name, line, col, f"a second column for field {target!r}")
        out[col] = target
    return out


def _cell(field: str, value: Any, tabular: bool) -> Any:
    """Turn a cell into what the record model expects (lists split, Chinese labels mapped, dates parsed)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if field in LIST_FIELDS and isinstance(value, str) and tabular:
        return [v.strip() for v in _LIST_SPLIT[field].split(value) if v.strip()]
    if not isinstance(value, str):
        return value
    text = value.strip()
    lowered = text.lower()
    if field == "legal_status" and lowered in _LEGAL:
        return _LEGAL[lowered]
    if field == "applicant_type" and lowered in _APPLICANT_TYPE:
        return _APPLICANT_TYPE[lowered]
    if field == "open_licence" and lowered in _BOOL:
        return _BOOL[lowered]
    if field == "language" and lowered in _LANGUAGE:
        return _LANGUAGE[lowered]
    if field in DATE_FIELDS and text:
        m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?|(\d{4})(\d{2})(\d{2})", text)
        if m:
            y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
            return f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    return text


def _reason(err: dict[str, Any]) -> str:
    if err["type"] in ("string_type", "missing") and err.get("input") is None:
        return "required, but empty or missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _to_record(kind: Kind, row: dict[str, Any], colmap: dict[str, str | None], tabular: bool, name: str,
               line: int) -> Patent | Demand | list[RowError]:
    values: dict[str, Any] = {}
    for col, value in row.items():
        target = colmap.get(col)
        if target is None:
            continue
        values[target] = _cell(target, value, tabular)
    if "language" not in values or values["language"] is None:
        text = " ".join(str(values.get(f) or "") for f in ("title", "abstract", "description"))
        values["language"] = "zh" if _CJK.search(text) else "en"
    try:
        record = MODELS[kind].model_validate(values)
        return derive(record) if isinstance(record, Patent) else record  # what the id, numbers and names imply
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else None
            column = next((c for c, t in colmap.items() if t == field), field)
            errors.append(RowError(name, line, column, _reason(err)))
        return errors


def read_file(path: str | Path, kind: Kind, mapping: dict[str, str] | None = None) -> ParsedFile:
    """Parse and validate every row of ``path``. File-level problems raise ``IngestError``; row problems are
    returned in ``errors`` (with the raw rows in ``rejects``) so the caller chooses to fail or to skip them."""
    path = Path(path)
    name = str(path)
    rows, encoding, tabular = _raw_rows(path)
    records: list[Patent | Demand] = []
    errors: list[RowError] = []
    rejects: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    colmaps: dict[tuple[str, ...], dict[str, str | None] | RowError] = {}
    any_rows = False
    for line, row in rows:
        any_rows = True
        if isinstance(row, RowError):
            errors.append(row)
            rejects.append({"line": line, "errors": [str(row)], "row": None})
            continue
        columns = tuple(row)
        if columns not in colmaps:
            colmaps[columns] = _column_map(kind, list(columns), mapping or {}, name, line)
        colmap = colmaps[columns]
        if isinstance(colmap, RowError):
            if tabular:  # the header (line 1) is wrong: every row would fail the same way
                raise IngestError([RowError(name, 1, colmap.field, colmap.reason)])
            colmap_error = RowError(name, line, colmap.field, colmap.reason)
            errors.append(colmap_error)
            rejects.append({"line": line, "errors": [str(colmap_error)], "row": _jsonable(row)})
            continue
        result = _to_record(kind, row, colmap, tabular, name, line)
        if isinstance(result, list):
            errors.extend(result)
            rejects.append({"line": line, "errors": [str(e) for e in result], "row": _jsonable(row)})
            continue
        if result.id in seen:
            err = RowError(name, line, "id", f"duplicate id {result.id!r} (first at line {seen[result.id]})")
            errors.append(err)
            rejects.append({"line": line, "errors": [str(err)], "row": _jsonable(row)})
            continue
        seen[result.id] = line
        records.append(result)
    if not any_rows:
        raise IngestError([RowError(name, None, None, "no records (only a header, or blank)")])
    return ParsedFile(records, errors, rejects, encoding)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in row.items()}


def ingest_file(
    store: Store, path: str | Path, kind: Kind, mapping: dict[str, str] | None = None, skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> BatchReport:
    """Validate ``path`` whole, then write it in one transaction. Any bad row fails the batch (nothing written)
    unless ``skip_invalid``: then bad rows go to ``rejects_path`` (JSONL) and the valid rows land."""
    parsed = read_file(path, kind, mapping)
    if parsed.errors and not skip_invalid:
        raise IngestError(parsed.errors)
    rejects_file = None
    if parsed.errors:
        target = Path(rejects_path) if rejects_path else Path(f"{Path(path).name}.rejects.jsonl")
        with target.open("w", encoding="utf-8") as out:
            for reject in parsed.rejects:
                out.write(json.dumps(reject, ensure_ascii=False, default=str) + "\n")
        rejects_file = str(target)
    if not parsed.records:
        raise IngestError([RowError(str(path), None, None, "no valid records")])
    return store.write_batch(kind, parsed.records, str(path), rejected=len(parsed.rejects), rejects_file=rejects_file)
