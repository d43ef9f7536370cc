"""The columns every matchmaking row has for a (demand, patent) pair: who (the demand, the patent and its holder),
why (the retrievers' scores and the searcher's explanation), and on what terms (licence terms of both sides and the
cooperation modes they share). Shortlists and pushes both build their rows from ``pair_fields``.
"""

from __future__ import annotations

from typing import Any

from matcher.explain import display_terms, snippet
from matcher.holders import name_key
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.store import Collection

# cooperation modes: offers say 完全转让/许可转让/技术入股/合作生产, demands 技术转让/技术许可/委托开发/技术入股
MODE_FAMILY = {"完全转让": "transfer", "技术转让": "transfer", "许可转让": "licence", "技术许可": "licence",
               "技术入股": "equity"}



def holder_name(patent: Patent) -> str | None:
    return patent.applicants[0] if patent.applicants else None


def holder_key(patent: Patent) -> str:
    """The first applicant, without case, punctuation or legal form; unknown: the patent is its own holder."""
    name = holder_name(patent)
    key = name_key(name) if name else ""
    return key or f"patent:{patent.id}"


def compatible_modes(offer: list[str], demand: list[str]) -> list[str] | None:
    """The demand's cooperation modes that the offer also allows (transfer / licence / equity, matched across the
    two vocabularies); None when either side publishes none of these three."""
    offered = {MODE_FAMILY[m] for m in offer if m in MODE_FAMILY}
    wanted = [m for m in demand if m in MODE_FAMILY]
    if not offered or not wanted:  # nothing comparable published (e.g. only 其他 / 委托开发)
        return None
    return [m for m in wanted if MODE_FAMILY[m] in offered]


def _retriever_fields(retrievers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    bm25, dense, fused = retrievers.get("bm25", {}), retrievers.get("dense", {}), retrievers.get("fused", {})
    return {
        "bm25_rank": bm25.get("rank"), "bm25_score": "abstained" if "abstained" in bm25 else bm25.get("score"),
        "dense_rank": dense.get("rank"), "dense_score": dense.get("score"),
        "fusion": fused.get("method", ""),
    }


def _explanation_fields(ex: dict[str, Any] | None) -> dict[str, Any]:
    if not ex:
        return {"shared_terms": "", "snippet": "", "closest_sentence": "", "closest_similarity": None}
    terms = "; ".join(display_terms(ex.get("matched_terms", [])))
    snip = ""
    snippets = ex.get("snippets", {})
    for name in ("abstract", "description", "title", "claims"):
        if name in snippets:
            s = snippets[name]
            snip = snippet(s["text"], [tuple(h) for h in s["highlights"]]).marked()
            break
    cs = ex.get("closest_sentence") or {}
    return {"shared_terms": terms, "snippet": snip.replace("\n", " "), "closest_sentence": cs.get("text", ""),
            "closest_similarity": cs.get("similarity")}


def pair_fields(demand: Demand, patent: Patent, score: float, retrievers: dict[str, dict[str, Any]],
                explanation: dict[str, Any] | None) -> dict[str, Any]:
    """The columns every output row has for a (demand, patent) pair: who, why (explanation and scores), terms."""
    compatible = compatible_modes(patent.cooperation_modes, demand.cooperation_modes)
    return {
        "demand_id": demand.id, "demand_title": demand.title, "demand_industry": demand.industry or "",
        "enterprise": demand.enterprise or "", "demand_modes": "、".join(demand.cooperation_modes),
        "patent_id": patent.id, "patent_title": patent.title or patent.abstract[:80],
        "patent_abstract": excerpt(patent.abstract), "patent_language": patent.language,
        "patent_kind": patent.kind or "", "holder": holder_name(patent) or "",
        "applicant_type": patent.applicant_type, "legal_status": patent.legal_status, "ipc": list(patent.ipc[:5]),
        "application_date": _iso(patent.application_date), "publication_date": _iso(patent.publication_date),
        **{k: getattr(patent, k) for k in DERIVED if getattr(patent, k, None) is not None},
        "inferred": [f for f in getattr(patent, "inferred", []) if f in INFERRED_SHOWN],
        "score": round(score, 6), **_retriever_fields(retrievers), **_explanation_fields(explanation),
        "open_licence": patent.open_licence, "price": patent.price or "", "maturity": patent.maturity or "",
        "offer_modes": "、".join(patent.cooperation_modes),
        "compatible_modes": "" if compatible is None else ("、".join(compatible) or "无"),
        "explanation": explanation, "retrievers": retrievers,
    }


# derived numbers a record may carry (issue 15: inferred from the data), shown when present
DERIVED = ("patent_type", "granted", "filing_year")


# derived fields that are guesses (matcher/derive.py): the export says which of the shown ones were guessed
INFERRED_SHOWN = ("applicants", "applicant_type", "patent_type", "granted", "filing_year")


def excerpt(text: str, chars: int = 160) -> str:
    """The first ``chars`` characters of ``text`` on one line, cut at a sentence end when one is near."""
    flat = " ".join(text.split())
    if len(flat) <= chars:
        return flat
    cut = max(flat.rfind(p, chars // 2, chars) for p in "。；;. ")
    return flat[: cut + 1 if cut > 0 else chars].rstrip() + "…"


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def explain_records(searcher: Searcher, kind: Collection, query: str,
                    records: list[Patent | Demand]) -> dict[str, dict[str, Any] | None]:
    """The searcher's explanation of each already-scored record for ``query``: the query is analysed and encoded
    once (``Searcher.explainer``), no search is run again."""
    if not records:
        return {}
    explainer = searcher.explainer(searcher.snapshot(kind), query)
    return {r.id: explainer(r) for r in records}

