"""The ingest vocabulary: header aliases (申请号 -> id) and cell labels (有效 -> valid), as data.

The shipped ``matcher/vocabulary/ingest.yaml``, extended by the operator's file of the same shape named by
``$PMATCH_INGEST_VOCABULARY`` (``EngineSettings.ingest_vocabulary``); a name or label that two files read
differently is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from matcher.settings import engine_settings
from matcher.store import MODELS

VOCABULARY = Path(__file__).parents[1] / "vocabulary" / "ingest.yaml"


@dataclass(frozen=True)
class Vocabulary:
    """Column names per collection (normalised name -> field) and cell labels per field (label -> stored value)."""

    headers: dict[str, dict[str, str]]
    values: dict[str, dict[str, Any]]


def alias_key(header: str) -> str:
    """A header as the vocabulary looks it up: no white space, lower case."""
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
                key = alias_key(str(name))
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
