"""``/v1/ingest/*`` and ``/v1/delete/*``, ``DELETE /v1/{patents,demands}/{id}``: writes, each followed by a rebuild.

A file is validated with ``matcher.ingest.read_file``, a JSON body with ``matcher.ingest.read_objects`` (parsed
once, by the same JSON reader as a file: duplicate keys, hostile nesting and huge numbers are refused), and the
records are chosen by ``matcher.ingest.accepted``, the CLI's one policy: all land or none do, unless
``skip_invalid``. They are written in one transaction.
"""

from __future__ import annotations

import re
import tempfile
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.http import schemas as s
from api.http.errors import MAX_ERROR_DETAILS, ApiError, PayloadTooLarge
from api.http.language import current, say, words
from api.http.security import WriteKey, write_router
from api.http.state import Service, ServiceDep
from matcher.i18n import Message
from matcher.ingest import (
    SUFFIXES,
    IngestError,
    ParsedFile,
    RowError,
    accepted,
    notices_text,
    parse_json,
    read_file,
    read_objects,
    rejects_lines,
)
from matcher.records import RecordId
from matcher.store import Collection
from matcher.texts import CJK_CHARS

UPLOAD_SUFFIXES = SUFFIXES
write = write_router()

Reindex = Annotated[bool, Query(description="Rebuild the index after the write (false: batch several writes, "
                                            "then POST /v1/index/rebuild).")]
Wait = Annotated[bool, Query(description="Answer once the rebuilt index is published (searches see the change).")]


def _row_details(errors: list[RowError], display: dict[str, str]) -> list[s.ErrorDetail]:
    lang = current()
    return [s.ErrorDetail(field=e.field, reason=e.reason(lang), code=e.code, file=display.get(e.file, e.file),
                          line=e.line) for e in errors[:MAX_ERROR_DETAILS]]


def _detail_text(detail: s.ErrorDetail) -> str:
    where = detail.file or ""
    if detail.line is not None:
        where += f":{detail.line}"
    return f"{where}: {detail.field}: {detail.reason}" if detail.field else f"{where}: {detail.reason}"


def _write_parsed(service: Service, kind: Collection, parse: Any, display: dict[str, str], skip_invalid: bool,
                  reindex: bool, wait: bool, json_body: bool = False) -> s.IngestResponse:
    """Parse (``parse()`` -> ParsedFile), choose the records by the one ingest policy, write them in one
    transaction. A JSON body's record N is named ``records.N-1`` in ``error.field``."""
    name = next(iter(display.values()))  # the name the client knows (the upload's filename, or "records")

    def field_of(detail: s.ErrorDetail) -> str | None:
        if not json_body or detail.line is None:
            return detail.field
        return f"records.{detail.line - 1}" + (f".{detail.field}" if detail.field else "")

    try:
        parsed: ParsedFile = parse()
    except IngestError as exc:  # the file as a whole: not readable, not records
        details = _row_details(exc.errors, display)
        raise ApiError(422, "invalid_file", _detail_text(details[0]), field_of(details[0]), details) from None
    try:
        records = accepted(parsed, name, skip_invalid)
    except IngestError as exc:  # bad rows (and no skip_invalid), or no valid row at all
        first = _row_details(exc.errors, display)[0]
        more = say("http.and_more", count=len(exc.errors) - 1) if len(exc.errors) > 1 else ""
        details = _row_details(parsed.errors, display) if parsed.errors else [first]
        raise ApiError(422, "invalid_records", say("http.records_refused", first=_detail_text(first), more=more),
                       field_of(first), details) from None
    with service.write_lock, service.workspace.open_store() as store:
        report = store.write_batch(kind, records, name, rejected=len(parsed.rejects),
                                   normalised=[_display(n, display) for n in notices_text(parsed, current())])
    rejects = [s.RejectedRecord(line=r.get("line"), errors=[_display(e, display) for e in r["errors"]])
               for r in rejects_lines(parsed, current())[:MAX_ERROR_DETAILS]]
    changed = bool(report.inserted or report.updated)
    return s.IngestResponse(report=s.BatchReport.model_validate(report.to_dict()), rejects=rejects,
                            reindex=service.reindex([kind], changed and reindex, wait, changed))


def _display(text: str, display: dict[str, str]) -> str:
    for path, name in display.items():
        text = text.replace(path, name)
    return text


def _parse_multipart(content_type: str, body: bytes) -> tuple[str | None, bytes]:
    """(filename, bytes) of the ``file`` part of a multipart/form-data body (the stdlib email parser)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1") + body)
    if not message.is_multipart():
        raise ApiError(400, "invalid_upload", Message("http.multipart_malformed"), "file")
    parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
    if not parts:
        raise ApiError(422, "invalid_upload", Message("http.multipart_no_file"), "file")
    payload = parts[0].get_payload(decode=True)
    return parts[0].get_filename(), payload if isinstance(payload, bytes) else b""


MAX_FILENAME_CHARS = 255
MAX_STORED_NAME_BYTES = 200
# What the schema says of ``filename`` (ECMA-262 and Python read it alike): a name that ends in a known suffix
FILENAME_PATTERN = "[.](" + "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in suffix.lstrip("."))
                                     for suffix in UPLOAD_SUFFIXES) + ")$"


def _safe_filename(name: str | None) -> str:
    """The bare name an upload is written as (no folders, only word characters, dots, dashes and brackets), cut
    to ``MAX_STORED_NAME_BYTES`` of UTF-8 with its suffix kept; a name without a known suffix, or over
    ``MAX_FILENAME_CHARS``, is refused."""
    base = Path((name or "").replace("\\", "/")).name.strip()
    base = re.sub(rf"[^\w.\-(){CJK_CHARS}]+", "_", base)
    suffix = Path(base).suffix
    stem = base[: len(base) - len(suffix)]
    while len((stem + suffix).encode("utf-8")) > MAX_STORED_NAME_BYTES:  # file systems count bytes (255)
        stem = stem[:-1]
    base = stem + suffix
    if name is not None and len(name) > MAX_FILENAME_CHARS:
        raise ApiError(422, "invalid_upload", Message("http.filename_too_long", limit=MAX_FILENAME_CHARS), "filename")
    if not base or not base.lower().endswith(UPLOAD_SUFFIXES):
        raise ApiError(422, "invalid_upload", Message("http.filename_suffix", name=repr(name),
                                                      suffixes=", ".join(UPLOAD_SUFFIXES)), "filename")
    return base


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ApiError(422, "validation_error", Message("http.map_syntax", pair=repr(pair)), "map")
        column, field = pair.split("=", 1)
        out[column.strip()] = field.strip()
    return out


def _ingest_json(service: Service, kind: Collection, data: bytes, reindex: bool, wait: bool) -> s.IngestResponse:
    """A JSON body, parsed once (``matcher.ingest.parse_json``), its envelope checked by ``IngestRequest`` and its
    records by ``read_objects``: nothing is written to a file and read back."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", Message("http.not_utf8", offset=exc.start)) from None
    value, problem = parse_json(text)
    if problem is not None:
        line, column, reason = problem
        message = say("http.invalid_json_where", reason=words(reason), line=line, column=column)
        code = reason.key.rsplit(".", 1)[-1] if isinstance(reason, Message) else "json_invalid"
        raise ApiError(400, "invalid_json", message, details=[s.ErrorDetail(reason=message, line=line, code=code)])
    try:
        body = s.IngestRequest.model_validate(value)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    return _write_parsed(service, kind, lambda: read_objects(value["records"], kind, "records"),
                         {"records": "records"}, body.skip_invalid, reindex, wait, json_body=True)


def _ingest_bytes(service: Service, kind: Collection, data: bytes, filename: str, skip_invalid: bool, reindex: bool,
                  wait: bool, mapping: dict[str, str]) -> s.IngestResponse:
    with tempfile.TemporaryDirectory(prefix="pmatch-upload-") as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data)
        return _write_parsed(service, kind, lambda: read_file(path, kind, mapping), {str(path): filename},
                             skip_invalid, reindex, wait)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _delete(service: Service, kind: Collection, ids: list[str], reindex: bool, wait: bool) -> s.DeleteResponse:
    with service.write_lock, service.workspace.open_store() as store:
        deleted = store.delete(kind, ids)
    missing = [i for i in ids if i not in set(deleted)]
    return s.DeleteResponse(deleted=deleted, missing=missing,
                            reindex=service.reindex([kind], bool(deleted) and reindex, wait, bool(deleted)))


def _body_examples(examples: dict[str, Any]) -> dict[str, Any]:
    """The JSON body's OpenAPI entry: it is read raw (parsed once, see ``_ingest_json``), so say its schema here."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": s.IngestRequest.model_json_schema(), "examples": examples}}}}


def _write_routes(kind: Collection, examples: dict[str, Any]) -> None:
    upload_body = {"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
    }}, "parameters": [{
        # read from the query string by hand (not a FastAPI parameter) so the schema can say "required": a raw
        # body has no other name; a multipart part's own filename stands in when it is left out, which OpenAPI
        # cannot say (a parameter cannot be required for one media type only), so the contract is the stricter
        "name": "filename", "in": "query", "required": True,
        "description": ("The file's name; its extension gives the format (.jsonl .ndjson .json .csv .tsv .xlsx). "
                        "A multipart upload may leave it out: the part's own filename is used then."),
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_FILENAME_CHARS, "pattern": FILENAME_PATTERN},
    }]}

    async def ingest_json(request: Request, service: ServiceDep, _key: WriteKey, reindex: Reindex = True,
                          wait: Wait = False) -> s.IngestResponse:
        data = await _read_body(request, service.settings.max_upload_bytes)
        return await run_in_threadpool(_ingest_json, service, kind, data, reindex, wait)

    async def ingest_file(request: Request, service: ServiceDep, _key: WriteKey, skip_invalid: bool = False,
                          map_: Annotated[list[str], Query(alias="map", description="COLUMN=field, or COLUMN= to "
                                                                                    "ignore a column")] = [],  # noqa: B006
                          reindex: Reindex = True, wait: Wait = False) -> s.IngestResponse:
        filename = request.query_params.get("filename")  # documented in ``upload_body``'s parameters
        data = await _read_body(request, service.settings.max_upload_bytes)
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            part_name, data = _parse_multipart(content_type, data)
            filename = filename or part_name
        name = _safe_filename(filename)
        if not data:
            raise ApiError(422, "invalid_upload", Message("http.empty_upload"), "file")
        return await run_in_threadpool(_ingest_bytes, service, kind, data, name, skip_invalid, reindex, wait,
                                       _mapping(map_))

    def delete_many(service: ServiceDep, _key: WriteKey, body: s.DeleteRequest, reindex: Reindex = True,
                    wait: Wait = False) -> s.DeleteResponse:
        return _delete(service, kind, list(dict.fromkeys(body.ids)), reindex, wait)

    tags = ["ingest"]
    write.post(f"/ingest/{kind}", tags=tags, summary=f"Ingest {kind} as JSON records (all or nothing)",
               operation_id=f"ingest_{kind}", openapi_extra=_body_examples(examples))(ingest_json)
    write.post(f"/ingest/{kind}/file", tags=tags, summary=f"Ingest a file of {kind} (JSONL, JSON, CSV, TSV, XLSX)",
               operation_id=f"ingest_{kind}_file", openapi_extra=upload_body,
               description="Send the file as the raw body with `?filename=`, or as multipart/form-data field "
                           "`file`. Same rules as `pmatch ingest`: errors name the file, line and field.")(ingest_file)
    write.post(f"/delete/{kind}", tags=tags, summary=f"Delete {kind} by id",
               operation_id=f"delete_{kind}")(delete_many)


def _delete_one(service: Service, kind: Collection, record_id: str, reindex: bool, wait: bool) -> s.DeleteResponse:
    result = _delete(service, kind, [record_id], reindex, wait)
    if not result.deleted:
        noun = kind[:-1]
        canonical = service.searcher.store.resolve(kind, record_id)
        message = (Message(f"http.no_{noun}_duplicate", id=repr(record_id), canonical=repr(canonical)) if canonical
                   else Message(f"http.no_{noun}", id=repr(record_id)))
        raise ApiError(404, "not_found", message, f"{noun}_id")
    return result


_write_routes("patents", s.PATENT_INGEST_EXAMPLES)
_write_routes("demands", s.DEMAND_INGEST_EXAMPLES)


@write.delete("/patents/{patent_id}", tags=["ingest"], summary="Delete a patent")
def delete_patent(service: ServiceDep, _key: WriteKey, patent_id: RecordId, reindex: Reindex = True,
                  wait: Wait = False) -> s.DeleteResponse:
    return _delete_one(service, "patents", patent_id, reindex, wait)


@write.delete("/demands/{demand_id}", tags=["ingest"], summary="Delete a demand")
def delete_demand(service: ServiceDep, _key: WriteKey, demand_id: RecordId, reindex: Reindex = True,
                  wait: Wait = False) -> s.DeleteResponse:
    return _delete_one(service, "demands", demand_id, reindex, wait)
