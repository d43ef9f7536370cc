"""A record's texts, in one place: what BM25 indexes, what is embedded, the sentences an explanation picks
from, the text a demand or a patent searches with, and which language a text is in.

- Indexed (BM25): a patent's title, abstract and claims; a demand's title and description (``indexed_fields``,
  joined by ``indexed_text``). Explanations highlight terms in the same fields.
- Dense: a patent's title, abstract and first claim, or a demand's title and description, cut to ``max_chars``
  characters (``dense_text``; 512 by default, ``RankerConfig.dense_text_chars``: title + abstract fit in full for
  95% of the bundled patents; what is cut is the tail of long abstracts and the first claim).
- Title (the learned ranker's title channel): the title, or for a record without one the subject its body opens
  with ("本发明公开了一种X，..." -> "一种X"), else the body's first ``TITLE_CHARS`` characters (``title_text``).
- Sentences for "closest in meaning": those of the dense parts, uncut (``sentences``).
- Query text: a demand searches patents with its title and description (``demand_query``); a patent searches
  demands with its dense text (``patent_query``).
- Keyword context: a patent's title and abstract, a demand's title and description (``context_text``), where a
  shortlist segment's keyword must occur; claims are left out, their boilerplate names every neighbouring
  technology.
Human keyphrases (``Patent.keywords``) are stored but deliberately in none of these: the known-item evaluation
uses them as queries.

Languages rest on one CJK rule (``indexes.script``): a record is Chinese when its title or body has a Chinese
character (``text_language``); a query can match the languages whose script it holds (``query_languages``);
its dominant language decides which way it is translated (``dominant_language``).
"""

from __future__ import annotations

import re

from indexes.script import CJK, CJK_CHARS, dominant_language, has_cjk
from matcher.records import Demand, Language, Patent

__all__ = [
    "CJK", "CJK_CHARS", "DENSE_TEXT_CHARS", "MAX_SENTENCES", "body_text", "context_text", "demand_query",
    "dense_text", "dominant_language", "first_claim", "has_cjk", "indexed_fields", "indexed_text", "patent_query",
    "query_languages", "sentences", "text_language", "title_text", "titled",
]

DENSE_TEXT_CHARS = 512
MAX_SENTENCES = 40
TITLE_CHARS = 80
_OPENING = re.compile(r"^(?:根据)?本(?:发明|公开|申请|实用新型)(?:的)?(?:实施例)?"
                      r"(?:涉及|公开了?|提供了?|是关于|属于|为|是)?")
_CLAUSE_END = re.compile(r"[，。；：,.;:]")
_CLAIM_2 = re.compile(r"\n\s*2\s*[.、．]")
_SENTENCE_END = re.compile(r"(?<=[。！？；;!?])|(?<=\.)\s+|\n+")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def body_text(record: Patent | Demand) -> str:
    """A patent's abstract, a demand's description: the text under the title."""
    return record.abstract if isinstance(record, Patent) else record.description


def indexed_fields(record: Patent | Demand) -> dict[str, str]:
    """Field -> text, for the fields BM25 indexes (empty ones included)."""
    if isinstance(record, Patent):
        return {"title": record.title, "abstract": record.abstract, "claims": record.claims}
    return {"title": record.title, "description": record.description}


def indexed_text(record: Patent | Demand) -> str:
    """The text BM25 indexes for a record: its non-empty indexed fields, one per line."""
    return "\n".join(part for part in indexed_fields(record).values() if part)


def first_claim(claims: str) -> str:
    """Claim 1: the claims up to where claim 2 starts (``2.``, ``2、`` or ``2．`` at the start of a line)."""
    return _CLAIM_2.split(claims, maxsplit=1)[0].strip() if claims else ""


def _dense_parts(record: Patent | Demand) -> tuple[str, ...]:
    if isinstance(record, Patent):
        return (record.title, record.abstract, first_claim(record.claims))
    return (record.title, record.description)


def dense_text(record: Patent | Demand, max_chars: int = DENSE_TEXT_CHARS) -> str:
    """The text embedded for a record: the most informative parts first, cut to ``max_chars``."""
    return "\n".join(p for p in _dense_parts(record) if p)[:max_chars]


def titled(title: str, body: str) -> str:
    """The title channel's text from a title and the body under it: the title; else the subject the body opens with
    ("本发明公开了一种X，..." -> "一种X"), else the body's first ``TITLE_CHARS`` characters. (Chosen on the dev
    splits: the body's first characters alone cost known-item nDCG@10 0.022, ``eval/RESULTS.md``.)"""
    if title.strip():
        return title.strip()
    text = body.strip()
    opening = _OPENING.match(text)
    if opening and opening.end() > 0:
        subject = _CLAUSE_END.split(text[opening.end():], maxsplit=1)[0].strip()
        if subject:
            return subject[:TITLE_CHARS]
    return text[:TITLE_CHARS]


def title_text(record: Patent | Demand) -> str:
    """What the title channel embeds for a record (``titled`` of its title and body)."""
    return titled(record.title, body_text(record))


def sentences(record: Patent | Demand) -> list[str]:
    """Candidate sentences for "closest in meaning": title, abstract and first-claim sentences (a demand's title
    and description), each of 4 characters or more, cut to 300, no repeats, at most ``MAX_SENTENCES``."""
    out: list[str] = []
    for part in _dense_parts(record):
        for s in _SENTENCE_END.split(part or ""):
            s = s.strip()
            if len(s) >= 4 and s not in out:
                out.append(s[:300])
    return out[:MAX_SENTENCES]


def context_text(record: Patent | Demand) -> str:
    """Where a shortlist segment's keyword must occur: the title and the abstract (description)."""
    return "\n".join((record.title, body_text(record)))


def demand_query(demand: Demand) -> str:
    """What a demand searches patents with: its title and description."""
    return "\n".join(p for p in (demand.title, demand.description) if p)


def patent_query(patent: Patent, max_chars: int = DENSE_TEXT_CHARS) -> str:
    """What a patent searches demands with: its dense text."""
    return dense_text(patent, max_chars)


def text_language(text: str) -> Language:
    """A record's language from its text: "zh" if it has a Chinese character, else "en"."""
    return "zh" if has_cjk(text) else "en"


def query_languages(text: str) -> frozenset[str]:
    """The languages BM25 can match for this query: zh if it has Chinese, en if it has Latin words (both when
    it has neither, e.g. a bare number)."""
    langs = set()
    if has_cjk(text):
        langs.add("zh")
    if _LATIN_WORD.search(text):
        langs.add("en")
    return frozenset(langs) if langs else frozenset({"zh", "en"})
