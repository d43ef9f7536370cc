"""``/v1/ingest/*`` and ``/v1/delete/*``, ``DELETE /v1/{patents,demands}/{id}``: writes, each followed by a rebuild.

A file or JSON body is validated with ``matcher.ingest.read_file`` and written in one transaction (the CLI's
rules): all records land or none do, unless ``skip_invalid``.
"""

from __future__ import annotations

import json
import re
import tempfile
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool

from api.http import schemas as s
from api.http.errors import MAX_ERROR_DETAILS, ApiError, PayloadTooLarge
from api.http.security import WriteKey, write_router
from api.http.state import Service, ServiceDep
from matcher.ingest import IngestError, RowError, read_file
from matcher.records import RecordId
from matcher.store import Kind

UPLOAD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".xlsx")
write = write_router()

Reindex = Annotated[bool, Query(description="Rebuild the index after the write (false: batch several writes, "
                                            "then POST /v1/index/rebuild).")]
Wait = Annotated[bool, Query(description="Answer once the rebuilt index is published (searches see the change).")]


def _row_details(errors: list[RowError], display: dict[str, str]) -> list[s.ErrorDetail]:
    return [s.ErrorDetail(field=e.field, reason=e.reason, file=display.get(e.file, e.file), line=e.line)
            for e in errors[:MAX_ERROR_DETAILS]]


def _detail_text(detail: s.ErrorDetail) -> str:
    where = detail.file or ""
    if detail.line is not None:
        where += f":{detail.line}"
    return f"{where}: {detail.field}: {detail.reason}" if detail.field else f"{where}: {detail.reason}"


def _ingest_path(service: Service, kind: Kind, path: Path, display: str, skip_invalid: bool, reindex: bool,
                 wait: bool, mapping: dict[str, str] | None = None, json_body: bool = False) -> s.IngestResponse:
    """Validate a file with ``matcher.ingest.read_file`` and write it in one transaction (the CLI's rules)."""
    names = {str(path): display}

    def field_of(detail: s.ErrorDetail) -> str | None:  # a JSON body's record N is records.N-1 in the request
        if not json_body or detail.line is None:
            return detail.field
        return f"records.{detail.line - 1}" + (f".{detail.field}" if detail.field else "")

    try:
        parsed = read_file(path, kind, mapping)
    except IngestError as exc:
        details = _row_details(exc.errors, names)
        raise ApiError(422, "invalid_file", _detail_text(details[0]), field_of(details[0]), details) from None
    if parsed.errors and not skip_invalid:
        details = _row_details(parsed.errors, names)
        more = f" (and {len(parsed.errors) - 1} more)" if len(parsed.errors) > 1 else ""
        raise ApiError(422, "invalid_records", f"{_detail_text(details[0])}{more}; nothing was written",
                       field_of(details[0]), details)
    if not parsed.records:
        raise ApiError(422, "invalid_records", "no valid records; nothing was written", None,
                       _row_details(parsed.errors, names))
    with service.write_lock, service.workspace.open_store() as store:
        report = store.write_batch(kind, parsed.records, display, rejected=len(parsed.rejects))
    rejects = [s.RejectedRecord(line=r.get("line"), errors=[e.replace(str(path), display) for e in r["errors"]])
               for r in parsed.rejects[:MAX_ERROR_DETAILS]]
    changed = bool(report.inserted or report.updated)
    return s.IngestResponse(report=s.BatchReport.model_validate(report.to_dict()), rejects=rejects,
                            reindex=service.reindex([kind], changed and reindex, wait, changed))


def _parse_multipart(content_type: str, body: bytes) -> tuple[str | None, bytes]:
    """(filename, bytes) of the ``file`` part of a multipart/form-data body (the stdlib email parser)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1") + body)
    if not message.is_multipart():
        raise ApiError(400, "invalid_upload", "malformed multipart/form-data body", "file")
    parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
    if not parts:
        raise ApiError(422, "invalid_upload", "multipart body has no 'file' part", "file")
    payload = parts[0].get_payload(decode=True)
    return parts[0].get_filename(), payload if isinstance(payload, bytes) else b""


def _safe_filename(name: str | None) -> str:
    base = Path((name or "").replace("\\", "/")).name.strip()
    base = re.sub(r"[^\w.\-()\u3400-\u9fff]+", "_", base)[:200]
    if not base or not base.lower().endswith(UPLOAD_SUFFIXES):
        raise ApiError(422, "invalid_upload", f"filename {name!r}: give a name ending in one of "
                                              f"{', '.join(UPLOAD_SUFFIXES)} (it tells the format)", "filename")
    return base


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ApiError(422, "validation_error", f"map takes COLUMN=field (or COLUMN= to ignore), not {pair!r}",
                           "map")
        column, field = pair.split("=", 1)
        out[column.strip()] = field.strip()
    return out


def _ingest_json(service: Service, kind: Kind, body: s.IngestRequest, reindex: bool, wait: bool) -> s.IngestResponse:
    with tempfile.TemporaryDirectory(prefix="pmatch-ingest-") as tmp:
        path = Path(tmp) / "records.json"
        # ASCII escapes: no raw U+2028 and friends that a line splitter would take for line ends
        path.write_text(json.dumps(body.records, ensure_ascii=True, default=str), "utf-8")
        return _ingest_path(service, kind, path, "records", body.skip_invalid, reindex, wait, json_body=True)


def _ingest_bytes(service: Service, kind: Kind, data: bytes, filename: str, skip_invalid: bool, reindex: bool,
                  wait: bool, mapping: dict[str, str]) -> s.IngestResponse:
    with tempfile.TemporaryDirectory(prefix="pmatch-upload-") as tmp:
        path = Path(tmp) / filename
        path.write_bytes(data)
        return _ingest_path(service, kind, path, filename, skip_invalid, reindex, wait, mapping)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _delete(service: Service, kind: Kind, ids: list[str], reindex: bool, wait: bool) -> s.DeleteResponse:
    with service.write_lock, service.workspace.open_store() as store:
        deleted = store.delete(kind, ids)
    missing = [i for i in ids if i not in set(deleted)]
    return s.DeleteResponse(deleted=deleted, missing=missing,
                            reindex=service.reindex([kind], bool(deleted) and reindex, wait, bool(deleted)))


def _body_examples(examples: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"examples": examples}}}}


def _write_routes(kind: Kind, examples: dict[str, Any]) -> None:
    upload_body = {"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
    }}}

    def ingest_json(service: ServiceDep, _key: WriteKey, body: s.IngestRequest, reindex: Reindex = True,
                    wait: Wait = False) -> s.IngestResponse:
        return _ingest_json(service, kind, body, reindex, wait)

    async def ingest_file(request: Request, service: ServiceDep, _key: WriteKey,
                          filename: Annotated[str | None, Query(max_length=255, description=(
                              "The file's name; its extension gives the format (.jsonl .json .csv .tsv .xlsx). "
                              "Needed for a raw body; a multipart part's own filename is used otherwise."))] = None,
                          skip_invalid: bool = False,
                          map_: Annotated[list[str], Query(alias="map", description="COLUMN=field, or COLUMN= to "
                                                                                    "ignore a column")] = [],  # noqa: B006
                          reindex: Reindex = True, wait: Wait = False) -> s.IngestResponse:
        data = await _read_body(request, service.settings.max_upload_bytes)
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            part_name, data = _parse_multipart(content_type, data)
            filename = filename or part_name
        name = _safe_filename(filename)
        if not data:
            raise ApiError(422, "invalid_upload", "empty upload: no records", "file")
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


def _delete_one(service: Service, kind: Kind, record_id: str, reindex: bool, wait: bool) -> s.DeleteResponse:
    result = _delete(service, kind, [record_id], reindex, wait)
    if not result.deleted:
        noun = kind[:-1]
        canonical = service.searcher.store.resolve(kind, record_id)
        hint = f" ({record_id!r} is a duplicate of {canonical!r}: delete that)" if canonical else ""
        raise ApiError(404, "not_found", f"no {noun} with id {record_id!r}{hint}", f"{noun}_id")
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
