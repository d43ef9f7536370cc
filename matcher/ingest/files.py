"""Reading raw rows from JSONL, JSON, CSV/TSV (UTF-8 or GB18030) and XLSX files: bytes to ``(line, row)`` pairs,
or to the ``RowError`` that refuses a row or the whole file. No field is interpreted here (``matcher.ingest.rows``
turns rows into records)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from matcher.i18n import Message
from matcher.ingest.results import RowError, refuse

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_LINE_CHARS = 2_000_000
MAX_JSON_DEPTH = 64  # a record is flat: two levels; anything deeper is not a record file
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".xlsx")
csv.field_size_limit(MAX_LINE_CHARS)  # the record model's limits apply, not the csv module's own 131,072


def _line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def _looks_utf16(data: bytes) -> bool:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    head = data[:4096]
    return len(head) >= 8 and (head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4)


def _gb2312_share(text: str) -> float:
    """Share of the non-ASCII characters that are common simplified Chinese (GB2312): ~1.0 for Chinese text,
    ~0 for Japanese or Big5 bytes read as GB18030."""
    wide = [ch for ch in text[:65536] if ord(ch) > 127]
    if len(wide) < 8:
        return 1.0
    common = 0
    for ch in wide:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common / len(wide)


def _decode(data: bytes, name: str) -> tuple[str, str]:
    if _looks_utf16(data):
        raise refuse(name, None, Message("ingest.utf16"))
    nul = data.find(b"\x00")
    if nul >= 0:
        raise refuse(name, _line_of(data, nul), Message("ingest.nul_byte", offset=f"{nul:,}"))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\r\n\t")
        if controls > max(8, len(text[:65536]) // 100):
            raise refuse(name, None, Message("ingest.control_chars"))
        if encoding == "gb18030" and _gb2312_share(text) < 0.5:
            try:
                data.decode("cp932")
                guess = Message("ingest.guess_shift_jis")
            except UnicodeDecodeError:
                guess = Message("ingest.guess_other")
            raise refuse(name, None, Message("ingest.not_chinese", guess=guess))
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(name, _line_of(data, exc.start), Message("ingest.bad_byte", offset=exc.start)) from None
    raise AssertionError("unreachable")


class _Duplicates(dict):  # type: ignore[type-arg]
    """A JSON object that held a key twice (``duplicates`` names them): which value was meant is unknown."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    twice: list[str] = []
    for key, value in pairs:
        if key in out and key not in twice:
            twice.append(key)
        out[key] = value
    if not twice:
        return out
    marked = _Duplicates(out)
    marked.duplicates = twice
    return marked


def _json_depth_at(text: str) -> int | None:
    """Character offset where nesting passes ``MAX_JSON_DEPTH`` (strings skipped), or None."""
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return i
        elif ch in "]}":
            depth -= 1
    return None


_JSON_MESSAGES = {  # the json module's reasons, in the catalogue
    "Expecting value": "ingest.json_expecting_value",
    "Expecting property name enclosed in double quotes": "ingest.json_expecting_name",
    "Expecting ',' delimiter": "ingest.json_expecting_comma", "Expecting ':' delimiter": "ingest.json_expecting_colon",
    "Unterminated string starting at": "ingest.json_unterminated_string",
    "Invalid control character at": "ingest.json_control_character", "Invalid \\escape": "ingest.json_invalid_escape",
    "Extra data": "ingest.json_extra_data",
}


def parse_json(source: str) -> tuple[Any, tuple[int, int, Message | str] | None]:
    """(value, None), or (None, (line, column, reason)) for text that is not JSON a record file may hold (the
    reason is a catalogue message, or the json module's own words for a rare one)."""
    deep = _json_depth_at(source)
    if deep is not None:
        line = source.count("\n", 0, deep) + 1
        column = deep - (source.rfind("\n", 0, deep) + 1) + 1
        return None, (line, column, Message("ingest.json_too_deep", depth=MAX_JSON_DEPTH))
    try:
        return json.loads(source, object_pairs_hook=_object), None
    except json.JSONDecodeError as exc:
        key = _JSON_MESSAGES.get(exc.msg)
        return None, (exc.lineno, exc.colno, Message(key) if key else exc.msg)
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more digits than int() reads
        long_number = re.search(r"\d{1000,}", source)
        at = long_number.start() if long_number else 0
        line = source.count("\n", 0, at) + 1
        column = at - (source.rfind("\n", 0, at) + 1) + 1
        if long_number:
            return None, (line, column, Message("ingest.json_long_number", digits=f"{len(long_number.group(0)):,}"))
        return None, (line, column, str(exc).split(";")[0])


def _json_row(obj: Any, name: str, line: int) -> dict[str, Any] | RowError:
    if not isinstance(obj, dict):
        return RowError(name, line, None, Message("ingest.not_object", got=_json_type(obj)))
    if isinstance(obj, _Duplicates):
        return RowError(name, line, obj.duplicates[0], Message("ingest.key_twice"))
    return obj


def _json_type(value: Any) -> Message | str:
    key = {list: "array", str: "string", int: "number", float: "number", bool: "bool",
           type(None): "null"}.get(type(value))
    return Message(f"ingest.json_{key}") if key else type(value).__name__


def _invalid_json(name: str, problem: tuple[int, int, Message | str]) -> RowError:
    return RowError(name, problem[0], None, Message("ingest.invalid_json", detail=problem[2], column=problem[1]))


def _rows_jsonl(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    for line_no, line in enumerate(text.split("\n"), 1):  # only "\n" ends a line: U+2028 inside a string does not
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            yield line_no, RowError(name, line_no, None, Message("ingest.line_too_long", limit=f"{MAX_LINE_CHARS:,}"))
            continue
        obj, problem = parse_json(line)
        if problem:
            yield line_no, _invalid_json(name, (line_no, problem[1], problem[2]))
            continue
        yield line_no, _json_row(obj, name, line_no)


def _rows_json(text: str, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    data, problem = parse_json(text)
    if problem:
        yield problem[0], _invalid_json(name, problem)
        return
    yield from object_rows(data, name)


def object_rows(data: Any, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Rows of a parsed JSON document: one object, or an array of them; "line" is the item number."""
    if isinstance(data, dict) and not isinstance(data, _Duplicates):
        data = [data]
    if not isinstance(data, list):
        yield 1, _json_row(data, name, 1) if isinstance(data, dict) else RowError(
            name, 1, None, Message("ingest.not_array", got=_json_type(data)))
        return
    for i, obj in enumerate(data, 1):
        yield i, _json_row(obj, name, i)


def _rows_csv(text: str, name: str, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise refuse(name, 1, Message("ingest.csv_header", detail=str(exc))) from None
    header = [h.strip() for h in header]
    line_no = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = line_no + 1
            if "unexpected end of data" in str(exc):
                reason = Message("ingest.csv_unclosed_quote", line=start)
            else:
                reason = Message("ingest.csv_malformed", detail=str(exc))
            yield start, RowError(name, start, None, reason)
            return
        start, line_no = line_no + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            yield start, RowError(name, start, None, Message("ingest.too_many_cells", cells=len(row),
                                                             columns=len(header)))
            continue
        yield start, dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _rows_xlsx(data: bytes, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import openpyxl  # imported here: only XLSX ingest needs it

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise refuse(name, None, Message("ingest.xlsx_not_zip"))
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise refuse(name, None, Message("ingest.xlsx_unreadable", detail=str(exc))) from None
    sheet = book.worksheets[0]
    rows = zip(sheet.iter_rows(values_only=True), formulas.worksheets[0].iter_rows(values_only=True), strict=False)
    first = next(rows, None)
    if first is None:
        raise refuse(name, None, _no_records_on_first_sheet(book))
    header = ["" if h is None else str(h).strip() for h in first[0]]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise refuse(name, 1, Message("ingest.xlsx_empty_header", sheet=repr(sheet.title)))
    for blank in (i for i, h in enumerate(header) if not h):
        raise refuse(name, 1, Message("ingest.xlsx_unnamed_column", column=_column_letter(blank)))
    any_row = False
    for line_no, (row, formula_row) in enumerate(rows, 2):
        cells = list(row)
        if all(_blank(c) for c in cells):
            continue
        any_row = True
        extra = [i for i, c in enumerate(cells) if i >= len(header) and not _blank(c)]
        if extra:
            yield line_no, RowError(name, line_no, None, Message("ingest.xlsx_outside_header",
                                                                 column=_column_letter(extra[0])))
            continue
        uncached = next((i for i, (c, f) in enumerate(zip(cells, formula_row, strict=False))
                         if c is None and isinstance(f, str) and f.startswith("=") and i < len(header)), None)
        if uncached is not None:
            yield line_no, RowError(name, line_no, header[uncached],
                                    Message("ingest.xlsx_formula", formula=repr(formula_row[uncached][:60])))
            continue
        yield line_no, dict(zip(header, cells[: len(header)] + [None] * (len(header) - len(cells)), strict=True))
    if not any_row:
        raise refuse(name, None, _no_records_on_first_sheet(book))


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _no_records_on_first_sheet(book: Any) -> Message:
    first = repr(book.worksheets[0].title)
    others = [ws.title for ws in book.worksheets[1:] if any(not _blank(c) for r in ws.iter_rows(values_only=True)
                                                           for c in r)]
    if others:
        return Message("ingest.xlsx_data_elsewhere", sheet=first, other=repr(others[0]))
    return Message("ingest.xlsx_no_records", sheet=first)


Rows = Iterator[tuple[int, dict[str, Any] | RowError]]


def raw_rows(path: Path) -> tuple[Rows, str | None, bool]:
    """(rows, encoding, tabular) for a file, by its extension."""
    name = str(path)
    if path.is_dir():
        raise refuse(name, None, Message("ingest.directory"))
    if not path.exists():
        raise refuse(name, None, Message("ingest.no_such_file"))
    if not path.is_file():
        raise refuse(name, None, Message("ingest.not_regular"))
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(s.lstrip(".") for s in SUFFIXES)
        if not suffix:
            raise refuse(name, None, Message("ingest.no_suffix", known=known))
        key = "ingest.unsupported_txt" if suffix == ".txt" else "ingest.unsupported_type"
        raise refuse(name, None, Message(key, suffix=repr(suffix), known=known))
    size = path.stat().st_size
    if size == 0:
        raise refuse(name, None, Message("ingest.empty_file"))
    if size > MAX_FILE_BYTES:
        raise refuse(name, None, Message("ingest.too_large", mib=MAX_FILE_BYTES // 2**20))
    data = path.read_bytes()
    if suffix == ".xlsx":
        return _rows_xlsx(data, name), None, True
    text, encoding = _decode(data, name)
    if suffix in (".jsonl", ".ndjson"):
        return _rows_jsonl(text, name), encoding, False
    if suffix == ".json":
        return _rows_json(text, name), encoding, False
    return _rows_csv(text, name, "\t" if suffix == ".tsv" else ","), encoding, True
