"""What reading a file gives: the records, the reasons rows were refused (``RowError``, ``file:line: field:
reason``), and the error that refuses a batch (``IngestError``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matcher.records import Demand, Patent

MAX_ERRORS_SHOWN = 20


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
    notices: list[RowError] = field(default_factory=list)  # what was normalised, where


def refuse(name: str, line: int | None, reason: str, field_name: str | None = None) -> IngestError:
    return IngestError([RowError(name, line, field_name, reason)])
