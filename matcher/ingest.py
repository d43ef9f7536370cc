"""Reading patents and demands from JSONL, JSON, CSV (UTF-8 or GB18030) and XLSX files, all-or-nothing.

``read_file`` turns a file into validated records, or into errors that name the file, line and field.
``ingest_file`` then writes the records in one transaction. A batch with any bad row fails whole (nothing
is written) unless ``skip_invalid`` is set; then the bad rows go to a rejects file and the rest lands.

Foreign column headers are mapped to field names: Chinese headers such as 申请号, 名称, 摘要, 申请人, 主分类号
and 法律状态 map out of the box, and ``mapping`` adds more (``{"Patent No.": "id", "Notes": ""}``, where an
empty target means "ignore this column"). An unknown column is an error: it would otherwise be lost.
The header names and cell labels (有效 -> valid, 高校 -> university ...) are data: ``vocabulary/ingest.yaml``,
which an operator extends with a file of the same shape named by ``$PMATCH_INGEST_VOCABULARY``.

What is refused and what is normalised (each refusal names file, line and field):
- refused: bytes that are not UTF-8/GB18030 text (binary, NUL bytes anywhere, UTF-16, Shift-JIS or Big5 that
  would read as GB18030 mojibake); invalid JSON, including duplicate keys in one object, nesting deeper than
  ``MAX_JSON_DEPTH`` and integers longer than Python reads; a CSV quote never closed; ids with invisible or
  control characters, or ``.``/``..``; ``.txt`` files (say ``.csv`` or ``.tsv``); XLSX formulas without a
  cached value.
- normalised, and reported in the batch (``BatchReport.normalised``): control and zero-width characters in
  text fields (see ``matcher.records``); IPC codes in every printed form (see ``matcher.ipc``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from matcher.derive import derive
from matcher.i18n import DEFAULT_LANG, Message, text
from matcher.ipc import split_codes
from matcher.reasons import reason as validation_reason
from matcher.records import INVISIBLE, Demand, Patent, fields_where, without_invisible
from matcher.settings import engine_settings
from matcher.store import MODELS, BatchReport, Kind, Store
from matcher.texts import text_language

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_LINE_CHARS = 2_000_000
MAX_ERRORS_SHOWN = 20
MAX_JSON_DEPTH = 64  # a record is flat: two levels; anything deeper is not a record file
MAX_NOTICES = 100
VOCABULARY = Path(__file__).with_name("vocabulary") / "ingest.yaml"
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".xlsx")
csv.field_size_limit(MAX_LINE_CHARS)  # the record model's limits apply, not the csv module's own 131,072


@dataclass(frozen=True)
class Vocabulary:
    """Column names per kind (normalised name -> field) and cell labels per field (label -> stored value)."""

    headers: dict[str, dict[str, str]]
    values: dict[str, dict[str, Any]]


def _alias_key(header: str) -> str:
    return re.sub(r"\s+", "", header).lower()


def _merge_vocabulary(into: Vocabulary, data: Any, source: str) -> None:
    if not isinstance(data, dict) or data.get("format_version") != 1:
        raise ValueError(f"{source}: an ingest vocabulary is a YAML mapping with format_version: 1")
    for kind, fields in (data.get("headers") or {}).items():
        if kind not in MODELS:
            raise ValueError(f"{source}: headers: unknown kind {kind!r} (patents, demands)")
        known = set(MODELS[kind].model_fields)
        for target, names in fields.items():
            if target not in known:
                raise ValueError(f"{source}: headers.{kind}.{target}: not a field of {kind}")
            for name in names:
                key = _alias_key(str(name))
                if into.headers[kind].setdefault(key, target) != target:
                    raise ValueError(f"{source}: headers.{kind}: {name!r} already means {into.headers[kind][key]!r}")
    for field_name, values in (data.get("values") or {}).items():
        table = into.values.setdefault(field_name, {})
        for stored, labels in values.items():
            value: Any = {"true": True, "false": False}.get(stored, stored) if field_name == "open_licence" else stored
            for label in labels:
                key = str(label).strip().lower()
                if table.setdefault(key, value) != value:
                    raise ValueError(f"{source}: values.{field_name}: {label!r} already means {table[key]!r}")


@cache
def _vocabulary(extra: str | None) -> Vocabulary:
    vocabulary = Vocabulary(headers={kind: {} for kind in MODELS}, values={})
    _merge_vocabulary(vocabulary, yaml.safe_load(VOCABULARY.read_text("utf-8")), str(VOCABULARY))
    if extra:
        _merge_vocabulary(vocabulary, yaml.safe_load(Path(extra).read_text("utf-8")), extra)
    return vocabulary


def vocabulary() -> Vocabulary:
    """The shipped vocabulary plus the operator's (``$PMATCH_INGEST_VOCABULARY``), read once per file name."""
    extra = engine_settings().ingest_vocabulary
    return _vocabulary(str(extra) if extra else None)


# Cells split into lists, and cells read as dates (the record field table, matcher.records.FIELDS).
LIST_FIELDS = {name for kind in MODELS for name in fields_where(kind, type="list", source=True)}
DATE_FIELDS = {name for kind in MODELS for name in fields_where(kind, type="date")}
_LIST_SPLIT = {
    "applicants": re.compile(r"[;；|]+"),
    "cooperation_modes": re.compile(r"[;；,，、|/]+"),
    "keywords": re.compile(r"[;；,，、|]+"),
}  # IPC cells are read by matcher.ipc.split_codes: "G06F 21/10" is one code


@dataclass(frozen=True)
class RowError:
    """One reason a row (or the file) was refused, or what was normalised in it. ``message`` is a catalogue
    message (``matcher/messages/ingest.yaml``, ``reasons.yaml``): the edge that shows it picks zh or en, and
    ``code`` is its stable, machine-readable name. ``str()`` is the English form (for logs)."""

    file: str
    line: int | None
    field: str | None
    message: Message

    @property
    def code(self) -> str:
        """The reason's stable code: the catalogue key's last part (``csv_unclosed_quote``, ``string_too_long``)."""
        return self.message.key.rsplit(".", 1)[-1]

    def reason(self, lang: str = DEFAULT_LANG) -> str:
        return self.message.text(lang)

    def text(self, lang: str = DEFAULT_LANG) -> str:
        """``file:line: field: reason`` in ``lang``."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        why = self.reason(lang)
        return f"{where}: {self.field}: {why}" if self.field else f"{where}: {why}"

    def __str__(self) -> str:
        return self.text("en")


class IngestError(Exception):
    """A batch was refused. ``errors`` lists every reason found; ``text(lang)`` shows the first few (``str()`` is
    the English form, for logs)."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__(self.text("en"))

    def text(self, lang: str = DEFAULT_LANG) -> str:
        shown = "\n".join(e.text(lang) for e in self.errors[:MAX_ERRORS_SHOWN])
        hidden = len(self.errors) - MAX_ERRORS_SHOWN
        more = "\n" + text("ingest.and_more", lang, count=hidden) if hidden > 0 else ""
        return f"{shown}{more}\n{text('ingest.nothing_written', lang)}"


@dataclass
class ParsedFile:
    records: list[Patent | Demand]
    errors: list[RowError]
    rejects: list[dict[str, Any]]
    encoding: str | None
    notices: list[RowError] = field(default_factory=list)  # what was normalised, where


def _refuse(name: str, line: int | None, reason: Message, field_name: str | None = None) -> IngestError:
    return IngestError([RowError(name, line, field_name, reason)])


# --- reading raw rows -------------------------------------------------------------------------------------
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
        raise _refuse(name, None, Message("ingest.utf16"))
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _refuse(name, _line_of(data, nul), Message("ingest.nul_byte", offset=f"{nul:,}"))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\r\n\t")
        if controls > max(8, len(text[:65536]) // 100):
            raise _refuse(name, None, Message("ingest.control_chars"))
        if encoding == "gb18030" and _gb2312_share(text) < 0.5:
            try:
                data.decode("cp932")
                guess = Message("ingest.guess_shift_jis")
            except UnicodeDecodeError:
                guess = Message("ingest.guess_other")
            raise _refuse(name, None, Message("ingest.not_chinese", guess=guess))
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(name, _line_of(data, exc.start), Message("ingest.bad_byte", offset=exc.start)) from None
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
    yield from _rows_objects(data, name)


def _rows_objects(data: Any, name: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
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
        raise _refuse(name, 1, Message("ingest.csv_header", detail=str(exc))) from None
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
        raise _refuse(name, None, Message("ingest.xlsx_not_zip"))
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise _refuse(name, None, Message("ingest.xlsx_unreadable", detail=str(exc))) from None
    sheet = book.worksheets[0]
    rows = zip(sheet.iter_rows(values_only=True), formulas.worksheets[0].iter_rows(values_only=True), strict=False)
    first = next(rows, None)
    if first is None:
        raise _refuse(name, None, _no_records_on_first_sheet(book))
    header = ["" if h is None else str(h).strip() for h in first[0]]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise _refuse(name, 1, Message("ingest.xlsx_empty_header", sheet=repr(sheet.title)))
    for blank in (i for i, h in enumerate(header) if not h):
        raise _refuse(name, 1, Message("ingest.xlsx_unnamed_column", column=_column_letter(blank)))
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
        raise _refuse(name, None, _no_records_on_first_sheet(book))


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


def _raw_rows(path: Path) -> tuple[Rows, str | None, bool]:
    """(rows, encoding, tabular) for a file, by its extension."""
    name = str(path)
    if path.is_dir():
        raise _refuse(name, None, Message("ingest.directory"))
    if not path.exists():
        raise _refuse(name, None, Message("ingest.no_such_file"))
    if not path.is_file():
        raise _refuse(name, None, Message("ingest.not_regular"))
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(s.lstrip(".") for s in SUFFIXES)
        if not suffix:
            raise _refuse(name, None, Message("ingest.no_suffix", known=known))
        key = "ingest.unsupported_txt" if suffix == ".txt" else "ingest.unsupported_type"
        raise _refuse(name, None, Message(key, suffix=repr(suffix), known=known))
    size = path.stat().st_size
    if size == 0:
        raise _refuse(name, None, Message("ingest.empty_file"))
    if size > MAX_FILE_BYTES:
        raise _refuse(name, None, Message("ingest.too_large", mib=MAX_FILE_BYTES // 2**20))
    data = path.read_bytes()
    if suffix == ".xlsx":
        return _rows_xlsx(data, name), None, True
    text, encoding = _decode(data, name)
    if suffix in (".jsonl", ".ndjson"):
        return _rows_jsonl(text, name), encoding, False
    if suffix == ".json":
        return _rows_json(text, name), encoding, False
    return _rows_csv(text, name, "\t" if suffix == ".tsv" else ","), encoding, True


# --- rows to records --------------------------------------------------------------------------------------
def _column_map(kind: Kind, columns: list[str], mapping: dict[str, str], name: str, line: int,
                vocab: Vocabulary) -> dict[str, str | None] | RowError:
    fields = set(MODELS[kind].model_fields)
    user = {_alias_key(k): v for k, v in mapping.items()}
    out: dict[str, str | None] = {}
    for col in columns:
        key = _alias_key(col)
        target = user.get(key, vocab.headers[kind].get(key))
        if target == "" or target == "-":
            out[col] = None
            continue
        if target is None or target not in fields:
            known = ", ".join(sorted(fields))
            reason = (Message("ingest.unknown_target", target=repr(target), known=known) if target
                      else Message("ingest.unknown_column", known=known))
            return RowError(name, line, col, reason)
        if target in out.values():
            return RowError(name, line, col, Message("ingest.second_column", target=repr(target)))
        out[col] = target
    return out


_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?|(\d{4})(\d{2})(\d{2})")


def _cell(field_name: str, value: Any, tabular: bool, vocab: Vocabulary) -> Any:
    """Turn a cell into what the record model expects (lists split, Chinese labels mapped, dates parsed, invisible
    characters out of text: see ``matcher.records.INVISIBLE``; an id keeps them, to be refused)."""
    if value is None:
        return None
    if field_name != "id":
        if isinstance(value, str):
            value = without_invisible(value)
        elif isinstance(value, list):
            value = [without_invisible(v) for v in value]
    if isinstance(value, datetime):
        return value.date()
    if field_name == "ipc" and isinstance(value, str) and tabular:
        return split_codes(value)
    if field_name in LIST_FIELDS and isinstance(value, str) and tabular:
        return [v.strip() for v in _LIST_SPLIT[field_name].split(value) if v.strip()]
    if not isinstance(value, str):
        return value
    text = value.strip()
    labels = vocab.values.get(field_name)
    if labels and text.lower() in labels:
        return labels[text.lower()]
    if field_name in DATE_FIELDS and text:
        m = _DATE.fullmatch(text)
        if m:
            y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
            return f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    return text


def _normalised(row: dict[str, Any], colmap: dict[str, str | None], name: str, line: int) -> list[RowError]:
    """What ``_cell`` normalised in text fields (control and zero-width characters), for the report."""
    out = []
    for column, value in row.items():
        target = colmap.get(column)
        items = value if isinstance(value, list) else [value]
        found = sorted({f"U+{ord(ch):04X}" for item in items if isinstance(item, str)
                        for ch in INVISIBLE.findall(item)})
        if found and target not in (None, "id"):  # an id is refused instead (matcher.records)
            out.append(RowError(name, line, column, Message("ingest.removed_invisible", chars=", ".join(found))))
    return out


def _to_record(kind: Kind, row: dict[str, Any], colmap: dict[str, str | None], tabular: bool, name: str,
               line: int, vocab: Vocabulary) -> tuple[Patent | Demand | list[RowError], list[RowError]]:
    """(record or its errors, what was normalised)."""
    values: dict[str, Any] = {}
    for col, value in row.items():
        target = colmap.get(col)
        if target is None:
            continue
        values[target] = _cell(target, value, tabular, vocab)
    if "language" not in values or values["language"] is None:
        text = " ".join(str(values.get(f) or "") for f in ("title", "abstract", "description"))
        values["language"] = text_language(text)
    try:
        record = MODELS[kind].model_validate(values)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            field_name = str(err["loc"][0]) if err["loc"] else None
            column = next((c for c, t in colmap.items() if t == field_name), field_name)
            errors.append(RowError(name, line, column, validation_reason(err)))
        return errors, []
    if isinstance(record, Patent):
        record = derive(record)  # what the id, numbers and names imply
    return record, _normalised(row, colmap, name, line)


def _records(rows: Rows, kind: Kind, name: str, tabular: bool, mapping: dict[str, str] | None,
             encoding: str | None) -> ParsedFile:
    vocab = vocabulary()
    parsed = ParsedFile([], [], [], encoding)
    seen: dict[str, int] = {}
    colmaps: dict[tuple[str, ...], dict[str, str | None] | RowError] = {}
    any_rows = False

    def reject(line: int, errors: list[RowError], row: dict[str, Any] | None) -> None:
        parsed.errors.extend(errors)
        parsed.rejects.append({"line": line, "errors": errors,
                               "row": None if row is None else _jsonable(row)})

    for line, row in rows:
        any_rows = True
        if isinstance(row, RowError):
            reject(line, [row], None)
            continue
        columns = tuple(row)
        if columns not in colmaps:
            colmaps[columns] = _column_map(kind, list(columns), mapping or {}, name, line, vocab)
        colmap = colmaps[columns]
        if isinstance(colmap, RowError):
            if tabular:  # the header (line 1) is wrong: every row would fail the same way
                raise IngestError([RowError(name, 1, colmap.field, colmap.message)])
            reject(line, [RowError(name, line, colmap.field, colmap.message)], row)
            continue
        result, notices = _to_record(kind, row, colmap, tabular, name, line, vocab)
        if isinstance(result, list):
            reject(line, result, row)
            continue
        if result.id in seen:
            reject(line, [RowError(name, line, "id", Message("ingest.duplicate_id", id=repr(result.id),
                                                             line=seen[result.id]))], row)
            continue
        seen[result.id] = line
        parsed.records.append(result)
        parsed.notices.extend(notices)
    if not any_rows:
        raise _refuse(name, None, Message("ingest.no_records"))
    return parsed


def read_file(path: str | Path, kind: Kind, mapping: dict[str, str] | None = None) -> ParsedFile:
    """Parse and validate every row of ``path``. File-level problems raise ``IngestError``; row problems are
    returned in ``errors`` (with the raw rows in ``rejects``) so the caller chooses to fail or to skip them."""
    path = Path(path)
    rows, encoding, tabular = _raw_rows(path)
    return _records(rows, kind, str(path), tabular, mapping, encoding)


def read_objects(data: Any, kind: Kind, name: str = "records") -> ParsedFile:
    """Validate records already parsed from JSON (an HTTP body: one object or an array of them) by the same rules
    as a JSON file, without writing them anywhere first; "line" is the item number."""
    return _records(_rows_objects(data, name), kind, name, False, None, None)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in row.items()}


# --- the one ingest policy --------------------------------------------------------------------------------
def accepted(parsed: ParsedFile, name: str, skip_invalid: bool) -> list[Patent | Demand]:
    """The records a batch writes, by the one policy the CLI and the API share: any bad row fails the batch
    (``IngestError``, nothing written) unless ``skip_invalid``; a batch left with no valid record fails too."""
    if parsed.errors and not skip_invalid:
        raise IngestError(parsed.errors)
    if not parsed.records:
        raise IngestError([RowError(name, None, None, Message("ingest.no_valid_records"))])
    return parsed.records


def notices_text(parsed: ParsedFile, lang: str = DEFAULT_LANG) -> list[str]:
    """What was normalised, as ``file:line: field: what`` lines for the batch report (the first ``MAX_NOTICES``)."""
    return [n.text(lang) for n in parsed.notices[:MAX_NOTICES]]


def rejects_lines(parsed: ParsedFile, lang: str = DEFAULT_LANG) -> list[dict[str, Any]]:
    """The rejected rows, each with its reasons as ``file:line: field: reason`` in ``lang`` (a rejects file's lines)."""
    return [{**r, "errors": [e.text(lang) for e in r["errors"]]} for r in parsed.rejects]


def ingest_file(
    store: Store, path: str | Path, kind: Kind, mapping: dict[str, str] | None = None, skip_invalid: bool = False,
    rejects_path: str | Path | None = None, lang: str = DEFAULT_LANG,
) -> BatchReport:
    """Validate ``path`` whole, then write it in one transaction. Any bad row fails the batch (nothing written)
    unless ``skip_invalid``: then bad rows go to ``rejects_path`` (JSONL) and the valid rows land. Reasons in the
    rejects file and the report are in ``lang``."""
    parsed = read_file(path, kind, mapping)
    records = accepted(parsed, str(path), skip_invalid)
    rejects_file = None
    if parsed.errors:
        target = Path(rejects_path) if rejects_path else Path(f"{Path(path).name}.rejects.jsonl")
        with target.open("w", encoding="utf-8") as out:
            for reject in rejects_lines(parsed, lang):
                out.write(json.dumps(reject, ensure_ascii=False, default=str) + "\n")
        rejects_file = str(target)
    return store.write_batch(kind, records, str(path), rejected=len(parsed.rejects), rejects_file=rejects_file,
                             normalised=notices_text(parsed, lang))
