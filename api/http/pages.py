"""One page of a ranked list as hits: what search and match endpoints answer with."""

from __future__ import annotations

import time
from typing import TypeVar

import numpy as np

from api.http import schemas as s
from api.http.errors import ApiError
from api.http.state import Service
from matcher.config import Mode
from matcher.i18n import Message
from matcher.results import Result
from matcher.search import MinScoreError
from matcher.served import Snapshot


def ranked_page(service: Service, snap: Snapshot, query: str, mask: np.ndarray, mode: Mode, offset: int, limit: int,
                explain: bool, min_score: float | None = None) -> tuple[list[Result], s.Page, dict[str, s.Explanation]]:
    """One page of the query's ranked list: the top ``candidates`` (answered as ``page.window``), computed
    identically for every page."""
    candidates = service.candidates
    k = min(offset + limit, candidates)
    try:
        results = service.searcher.search(snap, query, k, mask, mode, min_score=min_score) \
            if offset < candidates else []
    except ValueError as exc:
        if "all zeros" in str(exc):  # the embedder found nothing it knows in the query: no direction to search
            raise ApiError(422, "validation_error", Message("http.query_unsearchable"), "query") from None
        if min_score is None:
            raise
        detail = exc.as_message() if isinstance(exc, MinScoreError) else str(exc)
        raise ApiError(422, "min_score_unsupported", Message("http.min_score_unsupported", detail=detail)) from None
    page = results[offset:]
    more = len(results) == offset + limit and offset + limit < candidates
    explainer = service.searcher.explainer(snap, query) if explain and page else None
    explanations = {r.id: s.Explanation.model_validate(explainer(r.record)) for r in page} if explainer else {}
    return page, s.Page(offset=offset, limit=limit, window=candidates, next_offset=offset + limit if more else None), \
        explanations


def _retrievers(result: Result) -> dict[str, s.RetrieverScore]:
    return {name: s.RetrieverScore.model_validate(info) for name, info in result.retrievers.items()}


HitT = TypeVar("HitT", bound=s.Hit)


def _hits(results: list[Result], explanations: dict[str, s.Explanation], hit: type[HitT]) -> list[HitT]:
    return [hit(rank=r.rank, id=r.id, score=r.score, relevance=r.relevance, duplicates=r.duplicates,
                language=r.record.language, retrievers=_retrievers(r), record=r.record,
                explanation=explanations.get(r.id)) for r in results]


def patent_hits(results: list[Result], explanations: dict[str, s.Explanation]) -> list[s.PatentHit]:
    return _hits(results, explanations, s.PatentHit)


def demand_hits(results: list[Result], explanations: dict[str, s.Explanation]) -> list[s.DemandHit]:
    return _hits(results, explanations, s.DemandHit)


def ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()``), for ``took_ms``."""
    return round((time.perf_counter() - started) * 1000, 2)
