"""What reading a file gives: the records, the reasons rows were refused (``RowError``, ``file:line: field:
reason``), and the error that refuses a batch (``IngestError``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matcher.i18n import DEFAULT_LANG, Message, text
from matcher.records import Demand, Patent

MAX_ERRORS_SHOWN = 20


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


def refuse(name: str, line: int | None, reason: Message, field_name: str | None = None) -> IngestError:
    return IngestError([RowError(name, line, field_name, reason)])
