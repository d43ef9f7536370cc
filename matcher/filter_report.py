"""Why a filtered search came back empty (or short): which filter emptied the list, and what each keeps alone.

``report(facets, filters, found, k)`` counts, over the served index, how many records each active filter keeps on
its own and how many have no value for its field at all, and names the filter that emptied the list: one that no
record passes, else, applying them one after another, the first after which nothing is left. The CLI prints
``lines(lang)``; the API returns ``to_dict()``::

    applicant_type=university: 0 of 20,592 patents have this value (2,310 have no applicant type)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher.facet_index import FacetIndex, FilterMask
from matcher.filters import PatentFilters
from matcher.i18n import text


@dataclass(frozen=True)
class FilterCount:
    """One filter: ``keeps`` records pass it alone; ``missing`` have no value for its field."""

    name: str
    value: str
    keeps: int
    missing: int
    default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"filter": self.name, "value": self.value, "keeps": self.keeps, "missing": self.missing,
                "default": self.default}


@dataclass
class FilterReport:
    """What the filters did to one search over ``total`` indexed records."""

    total: int
    kept: int  # records all filters together keep
    found: int  # results the search returned
    k: int
    filters: list[FilterCount] = field(default_factory=list)
    emptied_by: str | None = None  # a filter no record passes, else (in order) the one after which none is left

    @property
    def short(self) -> bool:
        return self.found < self.k

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "kept_by_filters": self.kept, "found": self.found, "requested": self.k,
                "emptied_by": self.emptied_by, "filters": [f.to_dict() for f in self.filters]}

    def lines(self, lang: str = "zh") -> list[str]:
        """Human-readable, one fact a line: the verdict, then every filter with what it keeps alone."""
        out: list[str] = []
        if self.emptied_by is not None:
            emptied = next(f for f in self.filters if f.name == self.emptied_by)
            out.append(text("filters.emptied_by", lang, filter=f"{emptied.name}={emptied.value}"))
        elif self.kept < self.k:
            out.append(text("filters.few_kept", lang, kept=f"{self.kept:,}", total=f"{self.total:,}"))
        else:
            out.append(text("filters.query_short", lang, kept=f"{self.kept:,}", found=f"{self.found:,}"))
        for f in self.filters:
            line = text("filters.keeps", lang, filter=f.name, value=f.value, keeps=f"{f.keeps:,}",
                        total=f"{self.total:,}", missing=f"{f.missing:,}",
                        field=text(f"filters.field.{f.name}", lang))
            out.append(line + (text("filters.default", lang) if f.default else ""))
        return out


def _missing(facets: FacetIndex, part: FilterMask) -> np.ndarray:
    return facets.date_missing() if part.field == "date" else facets.missing(part.field)


def report(facets: FacetIndex, filters: PatentFilters, found: int, k: int) -> FilterReport:
    """The filters' effect on a patent search that returned ``found`` of ``k`` results."""
    parts = facets.patent_masks(filters)
    together = np.ones(facets.size, dtype=bool)
    emptied_by = None
    counts = []
    for part in parts:
        together &= part.mask
        if emptied_by is None and not together.any():
            emptied_by = part.name
        counts.append(FilterCount(part.name, part.value, int(part.mask.sum()), int(_missing(facets, part).sum()),
                                  part.default))
    alone_empty = next((c.name for c in counts if c.keeps == 0), None)  # a filter nothing passes says most
    return FilterReport(facets.size, int(together.sum()), found, k, counts, alone_empty or emptied_by)
