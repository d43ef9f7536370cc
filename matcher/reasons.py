"""Why a value was refused, in Chinese and English: pydantic's error types and ours, as catalogue messages.

A field validator of ours raises ``refusal("id_path_step", value="'..'")``: a pydantic error whose type is our code
and whose English text comes from the catalogue (``reason.<code>`` in ``matcher/messages/reasons.yaml``), so
pydantic's own message and ``.errors()`` stay meaningful. ``reason(err)`` turns any pydantic error (ours or
pydantic's built-in types, e.g. ``string_too_long``) into a ``Message`` for ingest reports and HTTP errors; a type
the catalogue does not name keeps pydantic's English text inside a generic Chinese one.
"""

from __future__ import annotations

import string
from typing import Any

from pydantic_core import PydanticCustomError

from matcher.i18n import Message, catalogue, text

PREFIX = "reason."


def refusal(error_type: str, /, **params: Any) -> PydanticCustomError:
    """The error a validator raises for refusal ``error_type`` (catalogue key ``reason.<error_type>``)."""
    template = text(PREFIX + error_type, "en")
    # pydantic fills {name} from the context itself; the rendered forms come from the catalogue (``reason``)
    return PydanticCustomError(error_type, template, {k: str(v) for k, v in params.items()})


def _needs(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def reason(err: dict[str, Any]) -> Message:
    """A pydantic error (an item of ``ValidationError.errors()``) as a catalogue message."""
    kind = str(err.get("type", ""))
    if kind in ("string_type", "missing") and err.get("input") is None:
        return Message(PREFIX + "required")
    key = PREFIX + kind
    forms = catalogue().get(key)
    ctx = {k: _plain(v) for k, v in (err.get("ctx") or {}).items()}
    if forms is not None and _needs(forms["en"]) <= set(ctx):
        return Message(key, **{k: ctx[k] for k in _needs(forms["en"])})
    return Message(PREFIX + "other", detail=str(err.get("msg", "invalid value")).removeprefix("Value error, "))


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else str(value)
