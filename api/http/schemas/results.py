"""What a ranked result is: a hit with its scores and explanation, and the page it is on."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
)

from api.http.schemas.common import is_none
from matcher.records import Demand, Language, Patent


class RetrieverScore(BaseModel):
    """How one retriever saw a result: its rank and score, or why it abstained; ``fused`` gives the method."""

    rank: int | None = Field(default=None, exclude_if=is_none)
    score: float | None = Field(default=None, exclude_if=is_none)
    abstained: str | None = Field(default=None, exclude_if=is_none)
    method: str | None = Field(default=None, exclude_if=is_none)
    margin: float | None = Field(default=None, exclude_if=is_none,
                                 description="The learned fusion's margin (its relevance is calibrated from it).")
    translated: bool | None = Field(default=None, exclude_if=is_none,
                                    description="BM25 saw the query translated into the record's language.")
    query: str | None = Field(default=None, exclude_if=is_none, description="The translated query BM25 saw.")


class Snippet(BaseModel):
    text: str
    highlights: list[list[int]] = Field(description="[start, end) character offsets into text.")


class MatchedTerm(BaseModel):
    term: str
    fields: list[str]
    weight: float | None = Field(default=None, description="The term's BM25 idf: terms are listed most informative "
                                                           "first.")


class ClosestSentence(BaseModel):
    text: str
    similarity: float


class Explanation(BaseModel):
    """Why a record matched: shared query terms and where, highlighted snippets, the sentence closest in meaning."""

    matched_terms: list[MatchedTerm]
    snippets: dict[str, Snippet]
    closest_sentence: ClosestSentence | None = None
    language: Language


class Hit(BaseModel):
    """One ranked result; ``PatentHit`` and ``DemandHit`` add the record."""

    rank: int = Field(description="1-based rank in the whole ranked list (not in the page).")
    id: str
    score: float
    relevance: float | None = Field(default=None, description="Calibrated estimate in [0, 1] that the record is "
                                                             "relevant (the learned hybrid ranker; null otherwise).")
    duplicates: list[str] = Field(default_factory=list, description="Ids of near-duplicates folded under this one.")
    language: Language
    retrievers: dict[str, RetrieverScore]
    explanation: Explanation | None = None


class PatentHit(Hit):
    record: Patent


class DemandHit(Hit):
    record: Demand


class IndexRef(BaseModel):
    """The snapshot that answered a query."""

    name: str
    data_version: int
    doc_count: int
    pending_writes: bool | None = Field(
        default=None, exclude_if=is_none,
        description="The store changed since this snapshot: some writes are not searchable yet (a flush is due). "
                    "Given on search and match responses; left out elsewhere.")


class Page(BaseModel):
    offset: int
    limit: int
    window: int = Field(description="How many results the ranked list holds at most; offset beyond it is empty.")
    next_offset: int | None = Field(description="Offset of the next page, or null on the last page.")
