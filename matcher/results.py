"""What a search returns: a ``Result`` per hit (record, scores by retriever, calibrated relevance, collapsed
duplicates) and the ``QueryExplainer`` that says why a record matched the query."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher.explain import closest_sentence, matched_terms
from matcher.records import Demand, Patent
from matcher.served import Snapshot


@dataclass
class Result:
    id: str
    rank: int
    score: float
    record: Patent | Demand
    retrievers: dict[str, dict[str, Any]] = field(default_factory=dict)
    explanation: dict[str, Any] | None = None
    # Calibrated estimate, in [0, 1], that this result is relevant to the query (the learned fusion's; None for
    # rankers that have none). Comparable across queries: an absolute floor (``min_score``) reads it.
    relevance: float | None = None
    duplicates: list[str] = field(default_factory=list)  # ids of near-duplicates collapsed under this result

    def to_dict(self) -> dict[str, Any]:
        out = {"rank": self.rank, "id": self.id, "score": self.score, "relevance": self.relevance,
               "language": self.record.language, "retrievers": self.retrievers,
               "record": self.record.model_dump(mode="json")}
        if self.duplicates:
            out["duplicates"] = self.duplicates
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


class QueryExplainer:
    """Why each record matched one query: shared terms by field (idf-weighted, with highlighted snippets), the
    record's sentence closest to the query by embedding, and the record's language. The query is analysed and
    encoded once, however many records are explained."""

    def __init__(self, snap: Snapshot, terms: list[str], query_vector: np.ndarray | None,
                 encode_sentences: Callable[[list[str]], np.ndarray] | None) -> None:
        self.snap, self.terms, self.query_vector, self.encode_sentences = snap, terms, query_vector, encode_sentences
        self.idf = {t: snap.bm25.idf(t) for t in terms}

    def __call__(self, record: Patent | Demand) -> dict[str, Any]:
        out = matched_terms(self.snap.bm25.analyzer, self.terms, record, self.idf)
        if self.encode_sentences is not None and self.query_vector is not None:
            out["closest_sentence"] = closest_sentence(self.query_vector, record, self.encode_sentences)
        out["language"] = record.language
        return out
