"""Rows to records: headers mapped to fields, cells read (lists split, dates and labels normalised), each row
validated by the record model, then derived fields added (``matcher.derive``). ``read_file`` and ``read_objects``
give a ``ParsedFile``; the caller decides what to write (``matcher.ingest.accepted``)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matcher.derive import derive
from matcher.i18n import Message
from matcher.ingest.files import Rows, object_rows, raw_rows
from matcher.ingest.results import IngestError, ParsedFile, RowError, refuse
from matcher.ingest.vocabulary import Vocabulary, alias_key, vocabulary
from matcher.ipc import split_codes
from matcher.reasons import reason as validation_reason
from matcher.records import INVISIBLE, Demand, Patent, fields_where, without_invisible
from matcher.store import MODELS, Collection
from matcher.texts import text_language

# Cells split into lists, and cells read as dates (the record field table, matcher.records.FIELDS).
LIST_FIELDS = {name for kind in MODELS for name in fields_where(kind, type="list", source=True)}
DATE_FIELDS = {name for kind in MODELS for name in fields_where(kind, type="date")}
_LIST_SPLIT = {
    "applicants": re.compile(r"[;；|]+"),
    "cooperation_modes": re.compile(r"[;；,，、|/]+"),
    "keywords": re.compile(r"[;；,，、|]+"),
}  # IPC cells are read by matcher.ipc.split_codes: "G06F 21/10" is one code


def _column_map(kind: Collection, columns: list[str], mapping: dict[str, str], name: str, line: int,
                vocab: Vocabulary) -> dict[str, str | None] | RowError:
    fields = set(MODELS[kind].model_fields)
    user = {alias_key(k): v for k, v in mapping.items()}
    out: dict[str, str | None] = {}
    for col in columns:
        key = alias_key(col)
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


def _to_record(kind: Collection, row: dict[str, Any], colmap: dict[str, str | None], tabular: bool, name: str,
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


def _records(rows: Rows, kind: Collection, name: str, tabular: bool, mapping: dict[str, str] | None,
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
        raise refuse(name, None, Message("ingest.no_records"))
    return parsed


def read_file(path: str | Path, kind: Collection, mapping: dict[str, str] | None = None) -> ParsedFile:
    """Parse and validate every row of ``path``. File-level problems raise ``IngestError``; row problems are
    returned in ``errors`` (with the raw rows in ``rejects``) so the caller chooses to fail or to skip them."""
    path = Path(path)
    rows, encoding, tabular = raw_rows(path)
    return _records(rows, kind, str(path), tabular, mapping, encoding)


def read_objects(data: Any, kind: Collection, name: str = "records") -> ParsedFile:
    """Validate records already parsed from JSON (an HTTP body: one object or an array of them) by the same rules
    as a JSON file, without writing them anywhere first; "line" is the item number."""
    return _records(object_rows(data, name), kind, name, False, None, None)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in row.items()}
