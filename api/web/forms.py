"""Reading a posted form: the CSRF check, bounded integers and numbers, and an uploaded file's bytes (the
application's body limit, ``ServiceSettings.max_upload_bytes``, applies before any of this runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from api.web.security import CSRF_FIELD, check_csrf


@dataclass
class Posted:
    form: FormData
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, limit: int = 2000) -> str:
        value = self.form.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""

    def integer(self, name: str, default: int | None, low: int, high: int, message: str) -> int | None:
        return self._bounded(name, default, low, high, message, int)

    def number(self, name: str, default: float, low: float, high: float, message: str) -> float:
        return self._bounded(name, default, low, high, message, float)

    def _bounded(self, name: str, default: Any, low: Any, high: Any, message: str, parse: Callable[[str], Any]) -> Any:
        """The field parsed with ``parse`` if it lies in [low, high]; else ``message`` is recorded and ``default``
        returned. An empty field is the default, silently."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = parse(raw)
        except ValueError:
            self.errors[name] = message
            return default
        if not low <= value <= high:
            self.errors[name] = message
            return default
        return value

    async def file(self, name: str) -> tuple[str, bytes] | None:
        """(filename, bytes) of an uploaded file, or None when the field is empty."""
        upload = self.form.get(name)
        if not isinstance(upload, UploadFile) or not upload.filename:
            return None
        return upload.filename, await upload.read()


async def posted(request: Request) -> Posted:
    """The form of a POST, after its CSRF token is checked (``CsrfError`` otherwise)."""
    form = await request.form(max_files=2, max_fields=200)
    check_csrf(request, form.get(CSRF_FIELD))
    return Posted(form)
