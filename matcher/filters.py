"""Filters on patents and demands, evaluated as boolean masks over an index's positions.

``FacetIndex`` holds each filterable field of every indexed record as numpy arrays aligned with the
index (categorical codes, day numbers, and CSR lists for multi-valued fields such as IPC codes), so a
filter becomes a vectorised mask in milliseconds even at a million records, and the same mask restricts
BM25 and dense retrieval exactly (no post-filtering that could leave fewer than k results).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator

from matcher.records import Demand, Patent, normalize_code

FORMAT_VERSION = 1
_NO_DAY = np.iinfo(np.int32).min
_EPOCH = date(1970, 1, 1).toordinal()
_CODE_PREFIX = re.compile(r"^[A-H](\d{1,2}([A-Z](\d{1,4}(/\d{0,6})?)?)?)?$")

# field -> how it is stored: "cat" one value, "multi" a list, "day" a date, "bool" a tri-state flag.
PATENT_FIELDS: dict[str, str] = {
    "language": "cat", "applicant_type": "cat", "legal_status": "cat", "maturity": "cat", "kind": "cat",
    "industry": "cat", "tech_area": "cat", "open_licence": "bool", "application_date": "day",
    "publication_date": "day", "ipc": "multi", "applicants": "multi", "cooperation_modes": "multi",
}
DEMAND_FIELDS: dict[str, str] = {
    "language": "cat", "industry": "cat", "region": "cat", "enterprise": "cat", "posted_date": "day",
    "expiry_date": "day", "cooperation_modes": "multi",
}


MAX_FILTER_VALUES = 100  # values of one list filter: each costs a pass over a vocabulary (100,000 took 4.8 s)
MAX_FILTER_TEXT = 200
_IPC_PREFIX_SCHEMA = r"^ *[A-Ha-h]( *[0-9]{1,2}( *[A-Za-z]( *[0-9]{1,4}( */ *[0-9]{0,6})?)?)?)? *$"
FilterText = Annotated[str, StringConstraints(max_length=MAX_FILTER_TEXT)]
IpcPrefix = Annotated[str, StringConstraints(max_length=40), WithJsonSchema(
    {"type": "string", "maxLength": 40, "pattern": _IPC_PREFIX_SCHEMA,
     "description": "An IPC/CPC code or prefix: H01M, G06F 9/48 (full-width forms are read too)."})]


class PatentFilters(BaseModel):
    """Which patents may be returned. Empty lists and None mean "no restriction" (except legal status)."""

    model_config = ConfigDict(extra="forbid")

    ipc: list[IpcPrefix] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                 description="IPC/CPC prefixes; a patent passes if any code starts with any of them "
                                             "(H01M, G06F9/48).")
    applicant_type: list[Literal["university", "institute", "company", "individual"]] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES)
    applicant: FilterText | None = Field(default=None, description="Part of an applicant's name, e.g. 浙江大学.")
    legal_status: list[Literal["valid", "pending", "invalid", "unknown"]] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Default: valid, or unknown where the source has no "
                                                                "status.")
    open_licence_only: bool = False
    date_from: date | None = Field(default=None, description="Application date (else publication date) on/after.")
    date_to: date | None = None
    maturity: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    kind: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                   description="发明专利, 非专利技术, US utility patent B2 ...")
    language: list[Literal["zh", "en"]] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)

    @field_validator("ipc")
    @classmethod
    def _check_prefixes(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            code = normalize_code(value)
            if not _CODE_PREFIX.match(code):
                raise ValueError(f"not an IPC/CPC code or prefix: {value!r} (e.g. H01M, G06F, H01M4/58)")
            out.append(code)
        return out


class DemandFilters(BaseModel):
    """Which demands may be returned."""

    model_config = ConfigDict(extra="forbid")

    industry: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                       description="Part of the industry name, e.g. 制造业.")
    region: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                     description="Part of the region name, e.g. 浙江.")
    cooperation_modes: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                                description="Any of these modes, e.g. 技术许可.")
    language: list[Literal["zh", "en"]] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    active_on: date | None = Field(default=None, description="Only demands not expired on this date.")


def _day(value: date | None) -> int:
    return _NO_DAY if value is None else value.toordinal() - _EPOCH


class FacetIndex:
    """Per-position field values of indexed records, and the masks filters make of them."""

    def __init__(self, spec: dict[str, str], arrays: dict[str, np.ndarray], vocabs: dict[str, list[str]],
                 size: int) -> None:
        self.spec = spec
        self.arrays = arrays
        self.vocabs = vocabs
        self.size = size

    @classmethod
    def build(cls, spec: dict[str, str], records: Iterable[Patent | Demand]) -> FacetIndex:
        vocab_maps: dict[str, dict[str, int]] = {f: {} for f, k in spec.items() if k in ("cat", "multi")}
        cols: dict[str, list[int]] = {f: [] for f in spec}
        size = 0
        multi_offsets: dict[str, list[int]] = {f: [0] for f, k in spec.items() if k == "multi"}
        for record in records:
            size += 1
            for field, kind in spec.items():
                value = getattr(record, field)
                if kind == "cat":
                    cols[field].append(-1 if value is None else vocab_maps[field].setdefault(str(value),
                                                                                           len(vocab_maps[field])))
                elif kind == "bool":
                    cols[field].append(-1 if value is None else int(bool(value)))
                elif kind == "day":
                    cols[field].append(_day(value))
                else:
                    for v in value:
                        cols[field].append(vocab_maps[field].setdefault(str(v), len(vocab_maps[field])))
                    multi_offsets[field].append(len(cols[field]))
        arrays: dict[str, np.ndarray] = {}
        for field, kind in spec.items():
            dtype = np.int8 if kind == "bool" else np.int32
            arrays[field] = np.asarray(cols[field], dtype=dtype)
            if kind == "multi":
                arrays[f"{field}.offsets"] = np.asarray(multi_offsets[field], dtype=np.int64)
        vocabs = {f: list(m) for f, m in vocab_maps.items()}
        return cls(spec, arrays, vocabs, size)

    # --- masks ----------------------------------------------------------------------------------------
    def _cat_mask(self, field: str, accept: Sequence[bool], unknown: bool = False) -> np.ndarray:
        """Records whose value's vocabulary entry is accepted (``accept[i]`` for vocab entry i)."""
        table = np.append(np.asarray(accept, dtype=bool), unknown)  # index -1 -> the appended "unknown" slot
        return table[self.arrays[field]]

    def _multi_mask(self, field: str, accept: Sequence[bool]) -> np.ndarray:
        """Records with at least one list value accepted."""
        values = self.arrays[field]
        offsets = self.arrays[f"{field}.offsets"]
        hit = np.asarray(accept, dtype=bool)[values] if len(values) else np.zeros(0, dtype=bool)
        owners = np.repeat(np.arange(self.size), np.diff(offsets))
        return np.bincount(owners[hit], minlength=self.size) > 0

    def _vocab_accept(self, field: str, predicate: Any) -> list[bool]:
        return [bool(predicate(v)) for v in self.vocabs[field]]

    def patent_mask(self, f: PatentFilters) -> np.ndarray:
        mask = np.ones(self.size, dtype=bool)
        if f.ipc:
            prefixes = tuple(f.ipc)
            mask &= self._multi_mask("ipc", self._vocab_accept("ipc", lambda v: v.startswith(prefixes)))
        if f.applicant_type:
            mask &= self._cat_mask("applicant_type", self._vocab_accept("applicant_type",
                                                                        lambda v: v in f.applicant_type))
        if f.applicant:
            needle = f.applicant.casefold()
            mask &= self._multi_mask("applicants", self._vocab_accept("applicants", lambda v: needle in v.casefold()))
        statuses = f.legal_status if f.legal_status is not None else ["valid", "unknown"]
        if set(statuses) != {"valid", "pending", "invalid", "unknown"}:
            mask &= self._cat_mask("legal_status", self._vocab_accept("legal_status", lambda v: v in statuses),
                                   unknown="unknown" in statuses)
        if f.open_licence_only:
            mask &= self.arrays["open_licence"] == 1
        if f.date_from or f.date_to:
            days = np.where(self.arrays["application_date"] != _NO_DAY, self.arrays["application_date"],
                            self.arrays["publication_date"])
            known = days != _NO_DAY
            if f.date_from:
                known &= days >= _day(f.date_from)
            if f.date_to:
                known &= days <= _day(f.date_to)
            mask &= known
        for field in ("maturity", "kind"):
            wanted = getattr(f, field)
            if wanted:
                mask &= self._cat_mask(field, self._vocab_accept(field, lambda v, w=wanted: v in w))
        if f.language:
            mask &= self._cat_mask("language", self._vocab_accept("language", lambda v: v in f.language))
        return mask

    def demand_mask(self, f: DemandFilters) -> np.ndarray:
        mask = np.ones(self.size, dtype=bool)
        for field in ("industry", "region"):
            parts = getattr(f, field)
            if parts:
                mask &= self._cat_mask(field, self._vocab_accept(field, lambda v, p=parts: any(x in v for x in p)))
        if f.cooperation_modes:
            mask &= self._multi_mask("cooperation_modes", self._vocab_accept(
                "cooperation_modes", lambda v: any(m in v for m in f.cooperation_modes)))
        if f.language:
            mask &= self._cat_mask("language", self._vocab_accept("language", lambda v: v in f.language))
        if f.active_on:
            expiry = self.arrays["expiry_date"]
            mask &= (expiry == _NO_DAY) | (expiry >= _day(f.active_on))
        return mask

    def counts(self, field: str) -> list[tuple[str, int]]:
        """Value -> number of records, most common first (for filter menus)."""
        kind = self.spec[field]
        values = self.arrays[field]
        if kind in ("cat", "multi"):
            counts = np.bincount(values[values >= 0], minlength=len(self.vocabs[field]))
            pairs = [(self.vocabs[field][i], int(n)) for i, n in enumerate(counts) if n]
        elif kind == "bool":
            pairs = [(label, int((values == v).sum())) for label, v in (("true", 1), ("false", 0))
                     if (values == v).any()]
        else:
            raise ValueError(f"{field} is a date: no counts")
        return sorted(pairs, key=lambda p: (-p[1], p[0]))

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in self.arrays.items():
            np.save(directory / f"{name}.npy", array)
        meta = {"format": "patent-match/facets", "format_version": FORMAT_VERSION, "spec": self.spec,
                "vocabs": self.vocabs, "size": self.size}
        (directory / "facets.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> FacetIndex:
        meta = json.loads((directory / "facets.json").read_text("utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: facet format v{meta.get('format_version')} unsupported")
        arrays = {p.stem: np.load(p, mmap_mode="r") for p in directory.glob("*.npy")}
        return cls(meta["spec"], arrays, meta["vocabs"], int(meta["size"]))
