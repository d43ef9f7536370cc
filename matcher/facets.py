"""Facet counts of a snapshot for filter menus: values of each filterable field with the records holding them.

Counts come from a snapshot's ``FacetIndex`` (``matcher.facet_index``), so they describe exactly what searches of that
snapshot filter on. Patents also get ``legal_status`` ``unknown`` (not published) and IPC sections (``A``-``H``,
one character) and subclasses (``H01M``, four), each record counted once per prefix.
"""

from __future__ import annotations

import numpy as np

from matcher.facet_index import FacetIndex
from matcher.records import fields_where
from matcher.store import Collection

PATENT_FACETS = fields_where("patents", facet=True)  # the record field table's facet fields (matcher.records)
DEMAND_FACETS = fields_where("demands", facet=True)

Counts = list[tuple[str, int]]  # (value, records), most records first, then by value


def _by_count(pairs: Counts) -> Counts:
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def prefix_counts(facets: FacetIndex, field: str, length: int) -> Counts:
    """Records per code prefix of ``length`` characters, each record counted once per prefix."""
    values = np.asarray(facets.arrays[field])
    offsets = np.asarray(facets.arrays[f"{field}.offsets"])
    labels = sorted({v[:length] for v in facets.vocabs[field]})
    if not labels or not len(values):
        return []
    code = {label: i for i, label in enumerate(labels)}
    label_of_value = np.asarray([code[v[:length]] for v in facets.vocabs[field]], dtype=np.int64)
    owners = np.repeat(np.arange(facets.size, dtype=np.int64), np.diff(offsets))
    pairs = np.unique(owners * len(labels) + label_of_value[values])
    counts = np.bincount(pairs % len(labels), minlength=len(labels))
    return _by_count([(labels[i], int(n)) for i, n in enumerate(counts) if n])


def facet_counts(facets: FacetIndex, kind: Collection) -> dict[str, Counts]:
    """Every facet of ``kind`` with its counts over the snapshot's records."""
    out: dict[str, Counts] = {}
    for field in PATENT_FACETS if kind == "patents" else DEMAND_FACETS:
        out[field] = facets.counts(field)
    if kind == "patents":
        unknown = int((np.asarray(facets.arrays["legal_status"]) < 0).sum())
        if unknown:
            out["legal_status"] = _by_count([*out["legal_status"], ("unknown", unknown)])
        out["ipc_section"] = prefix_counts(facets, "ipc", 1)
        out["ipc_subclass"] = prefix_counts(facets, "ipc", 4)
    return out
