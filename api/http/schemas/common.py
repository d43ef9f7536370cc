"""Limits and field types every request shares, and the one error shape."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from matcher.config import Mode
from matcher.reasons import refusal

MAX_QUERY_CHARS = 2_000
MAX_LIMIT = 200
MAX_OFFSET = 10_000
MAX_INGEST_RECORDS = 10_000
MAX_DELETE_IDS = 1_000
MAX_PORTFOLIO_IDS = 200

MAX_EXPLAINED = 50  # explained results per request: each costs snippets and a sentence embedding


# a query has a visible character: not only white space, control or invisible format characters (one character
# class read alike by Python and ECMA-262)
VISIBLE = (r"[^\x00-\x20\x7f-\x9f\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000"
           r"\ufeff\ufff9-\ufffb]")


def normalised_length(query: str) -> str:
    """The length limit holds after Unicode normalisation, which the analyzers apply (one U+FDFA is 18 characters)."""
    if len(unicodedata.normalize("NFKC", query)) > MAX_QUERY_CHARS:
        raise refusal("query_nfkc", limit=MAX_QUERY_CHARS)
    return query


QueryText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS, pattern=VISIBLE),
    AfterValidator(normalised_length),
]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Results to skip (0-based).")]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")]
ModeField = Annotated[Mode | None, Field(description="bm25, dense or hybrid; default: the ranker config's mode.")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    """One reason a request was refused; ``file`` and ``line`` are set for ingested records."""

    field: str | None = Field(default=None, description="Dotted path of the offending field, or a column name.")
    reason: str = Field(description="Why, in the request's language (Accept-Language: zh unless en is preferred).")
    code: str | None = Field(default=None, description="The reason's stable machine-readable code, e.g. "
                                                       "string_too_long, csv_unclosed_quote, key_twice.")
    file: str | None = None
    line: int | None = Field(default=None, description="Line of the file, or 1-based position in `records`.")


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_error, not_found, unauthorized.")
    message: str = Field(description="What went wrong, in the request's language (Accept-Language; zh unless en "
                                     "is preferred): the same code always, the words in zh or en.")
    field: str | None = Field(default=None, description="The field at fault, when there is one.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorInfo

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "validation_error", "message": "not an IPC/CPC code or prefix: 'X99'",
                   "field": "filters.ipc", "details": [{"field": "filters.ipc", "reason": "not an IPC/CPC code"}]}},
        {"error": {"code": "not_found", "message": "no patent with id 'CN000000000A'", "field": "patent_id",
                   "details": []}},
    ]})


def is_none(value: object) -> bool:
    return value is None
