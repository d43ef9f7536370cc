"""Filters evaluated as boolean masks over an index's positions.

``FacetIndex`` holds each filterable field of every indexed record as numpy arrays aligned with the
index (categorical codes, day numbers, and CSR lists for multi-valued fields such as IPC codes), so a
filter (``matcher.filters``) becomes a vectorised mask in milliseconds even at a million records, and the same mask
restricts BM25 and dense retrieval exactly (no post-filtering that could leave fewer than k results).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from matcher.filters import DemandFilters, PatentFilters
from matcher.records import FIELDS, Demand, Patent

FORMAT_VERSION = 1
_NO_DAY = np.iinfo(np.int32).min
_EPOCH = date(1970, 1, 1).toordinal()

# field -> how a FacetIndex stores it: "cat" one value, "multi" a list, "day" a date, "bool" a tri-state flag, "int"
# a number; for the fields the record field table marks ``filter`` (matcher.records.FIELDS).
_STORAGE = {"category": "cat", "list": "multi", "date": "day", "flag": "bool", "number": "int"}
_NO_INT = np.iinfo(np.int32).min


def facet_spec(collection: str) -> dict[str, str]:
    """Field -> storage of every filterable field of ``collection`` (patents, demands), for ``FacetIndex.build``."""
    return {name: _STORAGE[use.type] for name, use in FIELDS[collection].items() if use.filter}


PATENT_FACET_SPEC = facet_spec("patents")
DEMAND_FACET_SPEC = facet_spec("demands")


def _day(value: date | None) -> int:
    return _NO_DAY if value is None else value.toordinal() - _EPOCH


def _day_of_year_start(years: np.ndarray) -> np.ndarray:
    """Day number of 1 January of each year (vectorised; positions without a year get 1970's)."""
    y = np.where(years == _NO_INT, 1970, years).astype(np.int64)
    return (y - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)


def _day_of_year_end(years: np.ndarray) -> np.ndarray:
    return _day_of_year_start(np.where(years == _NO_INT, years, years + 1)) - 1


@dataclass
class FilterMask:
    """One active filter over an index: its name and value as the user gave them, the records it keeps, and which
    field's missing values explain it (``date``: no date and no filing year). ``default``: not asked for."""

    name: str
    value: str
    mask: np.ndarray
    field: str
    default: bool = False


class FacetIndex:
    """Per-position field values of indexed records, and the masks filters make of them."""

    def __init__(self, spec: dict[str, str], arrays: dict[str, np.ndarray], vocabs: dict[str, list[str]],
                 size: int) -> None:
        self.spec = spec
        self.arrays = arrays
        self.vocabs = vocabs
        self.size = size
        self.live: np.ndarray | None = None  # per position: False where a segmented snapshot deleted the record

    @classmethod
    def concat(cls, parts: Sequence[FacetIndex], live: Sequence[np.ndarray | None] | None = None) -> FacetIndex:
        """The facets of ``parts`` (a snapshot's segments) one after the other, vocabularies merged; ``live``
        (per part, None = all live) restricts every mask and count to live positions."""
        if len(parts) == 1 and (live is None or live[0] is None):
            return parts[0]
        spec = parts[0].spec
        vocab_maps: dict[str, dict[str, int]] = {f: {} for f, k in spec.items() if k in ("cat", "multi")}
        arrays: dict[str, list[np.ndarray]] = {}
        for part in parts:
            for field, storage in spec.items():
                column = part.arrays.get(field) if field in part.spec else None
                if column is None:  # a part that predates the field: no values
                    fill = {"cat": -1, "bool": -1, "day": _NO_DAY, "int": _NO_INT}.get(storage)
                    column = np.zeros(0, np.int32) if storage == "multi" else np.full(part.size, fill, dtype=np.int32)
                    offsets = np.zeros(part.size + 1, dtype=np.int64)
                else:
                    offsets = part.arrays.get(f"{field}.offsets")
                column = np.asarray(column)
                if storage in ("cat", "multi"):
                    remap = np.array([vocab_maps[field].setdefault(v, len(vocab_maps[field]))
                                      for v in part.vocabs.get(field, [])] + [-1], dtype=np.int32)
                    column = remap[column]  # -1 (no value) -> the appended -1
                arrays.setdefault(field, []).append(column)
                if storage == "multi":
                    arrays.setdefault(f"{field}.offsets", []).append(np.asarray(offsets))
        out: dict[str, np.ndarray] = {}
        for name, columns in arrays.items():
            if name.endswith(".offsets"):
                shifted, base = [np.zeros(1, dtype=np.int64)], 0
                for offsets in columns:
                    shifted.append(np.asarray(offsets[1:], dtype=np.int64) + base)
                    base += int(offsets[-1])
                out[name] = np.concatenate(shifted)
            else:
                out[name] = np.concatenate(columns).astype(columns[0].dtype, copy=False)
        merged = cls(spec, out, {f: list(m) for f, m in vocab_maps.items()}, sum(p.size for p in parts))
        if live is not None and any(m is not None for m in live):
            merged.live = np.concatenate([np.ones(p.size, dtype=bool) if m is None else np.asarray(m, dtype=bool)
                                          for p, m in zip(parts, live, strict=True)])
        return merged

    def take(self, positions: np.ndarray) -> FacetIndex:
        """The facets of ``positions`` only, in that order (vocabularies kept)."""
        pos = np.asarray(positions, dtype=np.int64)
        arrays: dict[str, np.ndarray] = {}
        for field, storage in self.spec.items():
            column = self.arrays.get(field)
            if column is None:
                continue
            if storage == "multi":
                offsets = np.asarray(self.arrays[f"{field}.offsets"], dtype=np.int64)
                counts = offsets[pos + 1] - offsets[pos]
                starts = np.repeat(offsets[pos] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
                arrays[field] = np.asarray(column)[np.arange(int(counts.sum()), dtype=np.int64) + starts]
                arrays[f"{field}.offsets"] = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
            else:
                arrays[field] = np.asarray(column)[pos]
        return FacetIndex(self.spec, arrays, self.vocabs, int(pos.size))

    def _all(self) -> np.ndarray:
        return np.ones(self.size, dtype=bool) if self.live is None else self.live.copy()

    @classmethod
    def build(cls, spec: dict[str, str], records: Iterable[Patent | Demand]) -> FacetIndex:
        vocab_maps: dict[str, dict[str, int]] = {f: {} for f, k in spec.items() if k in ("cat", "multi")}
        cols: dict[str, list[int]] = {f: [] for f in spec}
        size = 0
        multi_offsets: dict[str, list[int]] = {f: [0] for f, k in spec.items() if k == "multi"}
        for record in records:
            size += 1
            for field, storage in spec.items():
                value = getattr(record, field)
                if storage == "cat":
                    cols[field].append(-1 if value is None else vocab_maps[field].setdefault(str(value),
                                                                                           len(vocab_maps[field])))
                elif storage == "bool":
                    cols[field].append(-1 if value is None else int(bool(value)))
                elif storage == "day":
                    cols[field].append(_day(value))
                elif storage == "int":
                    cols[field].append(_NO_INT if value is None else int(value))
                else:
                    for v in value:
                        cols[field].append(vocab_maps[field].setdefault(str(v), len(vocab_maps[field])))
                    multi_offsets[field].append(len(cols[field]))
        arrays: dict[str, np.ndarray] = {}
        for field, storage in spec.items():
            dtype = np.int8 if storage == "bool" else np.int32
            arrays[field] = np.asarray(cols[field], dtype=dtype)
            if storage == "multi":
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

    def _column(self, field: str) -> np.ndarray | None:
        """A field's array, or None when this index predates the field (every record then has no value)."""
        return self.arrays.get(field) if field in self.spec else None

    def _cat(self, field: str, predicate: Any, unknown: bool = False) -> np.ndarray:
        if self._column(field) is None:
            return np.full(self.size, unknown, dtype=bool)
        return self._cat_mask(field, self._vocab_accept(field, predicate), unknown)

    def _multi(self, field: str, predicate: Any) -> np.ndarray:
        if self._column(field) is None:
            return np.zeros(self.size, dtype=bool)
        return self._multi_mask(field, self._vocab_accept(field, predicate))

    def missing(self, field: str) -> np.ndarray:
        """Records with no value for ``field`` (no list entries, for a list field)."""
        column = self._column(field)
        if column is None:
            return np.ones(self.size, dtype=bool)
        storage = self.spec[field]
        if storage == "multi":
            return np.diff(self.arrays[f"{field}.offsets"]) == 0
        return column == {"cat": -1, "bool": -1, "day": _NO_DAY, "int": _NO_INT}[storage]

    def patent_masks(self, f: PatentFilters) -> list[FilterMask]:
        """One mask per active filter, in a fixed order, each with the records that have no value for its field.
        Their conjunction is ``patent_mask``; ``matcher.filter_report`` says which of them emptied a search."""
        out: list[FilterMask] = []
        excluded = {}
        if not f.include_inferred:
            excluded = {field: self._multi("inferred", lambda v, fl=field: v == fl)
                        for field in ("applicant_type", "applicants")}
        if f.ipc:
            prefixes = tuple(f.ipc)
            out.append(FilterMask("ipc", ",".join(f.ipc), self._multi("ipc", lambda v: v.startswith(prefixes)),
                                  "ipc"))
        if f.applicant_type:
            mask = self._cat("applicant_type", lambda v: v in f.applicant_type)
            if "applicant_type" in excluded:
                mask &= ~excluded["applicant_type"]
            out.append(FilterMask("applicant_type", ",".join(f.applicant_type), mask, "applicant_type"))
        if f.applicant:
            needle = f.applicant.casefold()
            mask = self._multi("applicants", lambda v: needle in v.casefold())
            if "applicants" in excluded:
                mask &= ~excluded["applicants"]
            out.append(FilterMask("applicant", f.applicant, mask, "applicants"))
        statuses = f.legal_status if f.legal_status is not None else ["valid", "unknown"]
        if set(statuses) != {"valid", "pending", "invalid", "unknown"}:
            mask = self._cat("legal_status", lambda v: v in statuses, unknown="unknown" in statuses)
            out.append(FilterMask("legal_status", ",".join(statuses), mask, "legal_status",
                                  default=f.legal_status is None))
        if f.open_licence_only:
            column = self._column("open_licence")
            mask = np.zeros(self.size, dtype=bool) if column is None else column == 1
            out.append(FilterMask("open_licence", "true", mask, "open_licence"))
        if f.granted_only:
            column = self._column("granted")
            mask = np.zeros(self.size, dtype=bool) if column is None else column == 1
            out.append(FilterMask("granted", "true", mask, "granted"))
        if f.date_from or f.date_to:
            out.append(FilterMask("date", f"{f.date_from or ''}..{f.date_to or ''}", self._date_mask(f), "date"))
        for field in ("maturity", "kind", "patent_type", "language"):
            wanted = getattr(f, field)
            if wanted:
                out.append(FilterMask(field, ",".join(wanted), self._cat(field, lambda v, w=wanted: v in w), field))
        return out

    def _date_mask(self, f: PatentFilters) -> np.ndarray:
        """Application date, else publication date; else a filing year, if the whole year lies in the range."""
        app, pub = self.arrays["application_date"], self.arrays["publication_date"]
        days = np.where(app != _NO_DAY, app, pub)
        known = days != _NO_DAY
        ok = known.copy()
        if f.date_from:
            ok &= days >= _day(f.date_from)
        if f.date_to:
            ok &= days <= _day(f.date_to)
        years = self._column("filing_year")
        if years is not None:
            by_year = (~known) & (years != _NO_INT)
            if f.date_from:
                by_year &= _day_of_year_start(years) >= _day(f.date_from)
            if f.date_to:
                by_year &= _day_of_year_end(years) <= _day(f.date_to)
            ok |= by_year
        return ok

    def date_missing(self) -> np.ndarray:
        missing = (self.arrays["application_date"] == _NO_DAY) & (self.arrays["publication_date"] == _NO_DAY)
        years = self._column("filing_year")
        return missing if years is None else missing & (years == _NO_INT)

    def patent_mask(self, f: PatentFilters) -> np.ndarray:
        mask = self._all()
        for part in self.patent_masks(f):
            mask &= part.mask
        return mask

    def demand_mask(self, f: DemandFilters) -> np.ndarray:
        mask = self._all()
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
        storage = self.spec[field]
        values = self.arrays[field]
        if self.live is not None:  # count live records only
            if storage == "multi":
                offsets = self.arrays[f"{field}.offsets"]
                values = values[np.repeat(self.live, np.diff(offsets))]
            else:
                values = values[self.live]
        if storage in ("cat", "multi"):
            counts = np.bincount(values[values >= 0], minlength=len(self.vocabs[field]))
            pairs = [(self.vocabs[field][i], int(n)) for i, n in enumerate(counts) if n]
        elif storage == "bool":
            pairs = [(label, int((values == v).sum())) for label, v in (("true", 1), ("false", 0))
                     if (values == v).any()]
        elif storage == "int":
            known = values[values != _NO_INT]
            uniq, n = np.unique(known, return_counts=True)
            pairs = [(str(int(u)), int(c)) for u, c in zip(uniq, n, strict=True)]
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
