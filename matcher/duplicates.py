"""Collapsing near-duplicate results: one offer written twice (the same title and body once punctuation and case
are dropped, or document vectors at least ``DUPLICATE_COSINE`` apart) is shown once, the others listed under it."""

from __future__ import annotations

import re

import numpy as np

from matcher.records import Demand, Patent
from matcher.served import Snapshot
from matcher.texts import body_text

_NOT_WORD = re.compile(r"[\W_]+")
DUPLICATE_COSINE = 0.95  # document vectors at least this close are one offer written twice
DUPLICATE_WINDOW = 20  # results looked at beyond k, so that k remain after collapsing


def duplicate_key(record: Patent | Demand) -> str:
    """Title and abstract (or description), lower-cased, with every non-word character removed."""
    return _NOT_WORD.sub("", f"{record.title}{body_text(record) or ''}".lower())


def collapse_duplicates(snap: Snapshot, ranked: list[tuple[int, float]], records: dict[str, Patent | Demand]
                        ) -> list[tuple[tuple[int, float], list[int]]]:
    """Group ``ranked`` (position, score), best first: a result joins the first kept one it duplicates (same
    ``duplicate_key``, or document vectors with cosine >= ``DUPLICATE_COSINE``); each group keeps its best."""
    heads: list[tuple[tuple[int, float], list[int]]] = []
    keys: dict[str, int] = {}
    vectors = None
    if snap.dense is not None and ranked:
        vectors = np.asarray(snap.dense.vectors[np.asarray([p for p, _ in ranked])], dtype=np.float32)
    head_rows: list[int] = []
    for i, (pos, score) in enumerate(ranked):
        key = duplicate_key(records[snap.bm25.ids[pos]])
        group = keys.get(key) if key else None
        if group is None and vectors is not None and head_rows:
            sims = vectors[head_rows] @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= DUPLICATE_COSINE:
                group = best
        if group is None:
            if key:
                keys[key] = len(heads)
            heads.append(((pos, score), []))
            head_rows.append(i)
        else:
            heads[group][1].append(pos)
    return heads
