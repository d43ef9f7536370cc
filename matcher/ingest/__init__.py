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

Modules: ``files`` (bytes to raw rows, per format), ``rows`` (rows to validated records), ``vocabulary`` (header
aliases and cell labels), ``results`` (``ParsedFile``, ``RowError``, ``IngestError``); here, the one ingest policy
the CLI and the API share (``accepted``) and ``ingest_file``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matcher.i18n import DEFAULT_LANG, Message
from matcher.ingest.files import MAX_FILE_BYTES, MAX_JSON_DEPTH, MAX_LINE_CHARS, SUFFIXES, parse_json
from matcher.ingest.results import MAX_ERRORS_SHOWN, IngestError, ParsedFile, RowError
from matcher.ingest.rows import DATE_FIELDS, LIST_FIELDS, read_file, read_objects
from matcher.ingest.vocabulary import VOCABULARY, Vocabulary, vocabulary
from matcher.records import Demand, Patent
from matcher.store import BatchReport, Collection, Store

__all__ = [
    "DATE_FIELDS", "LIST_FIELDS", "MAX_ERRORS_SHOWN", "MAX_FILE_BYTES", "MAX_JSON_DEPTH", "MAX_LINE_CHARS",
    "MAX_NOTICES", "SUFFIXES", "VOCABULARY", "IngestError", "ParsedFile", "RowError", "Vocabulary", "accepted",
    "ingest_file", "notices_text", "parse_json", "read_file", "read_objects", "rejects_lines", "vocabulary",
]

MAX_NOTICES = 100


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
    store: Store, path: str | Path, kind: Collection, mapping: dict[str, str] | None = None, skip_invalid: bool = False,
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
