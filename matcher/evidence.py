"""Lexical evidence that a patent talks about what a demand asks for, in the demand's own words: the
idf-weighted share of the demand title's informative words that the patent's title or abstract also has.

Across languages (a Chinese demand, an English patent) each of the demand's words counts when one of its
CC-CEDICT glosses (``indexes.translate.dictionary``), every content word of it, occurs in the patent: 纱线 ("yarn")
is not found in a patent on GPU *threads* (线程), so a pair whose only link is a cross-language embedding cosine,
the false friends of issue 14, has no evidence. A title word the dictionary lacks is looked up by its sub-words
(``to_english``), all of which must match; a word whose glosses are all weak (管理 -> manage) does not count.

A design patent (外观设计) protects an appearance, not a technique: it answers no demand (``answers_a_need``).

Shortlists and pushes floor their pairs on it (``ShortlistOptions.min_coverage``, ``PushOptions.min_coverage``):
a demand title is short and says what is wanted (永磁同步电机, 纱线前置处理工艺), so a patent that shares none of
its informative words is rarely what the enterprise asked for, however close its embedding. ``topic_coverage`` is
the other way round (the patent title's words in the demand), so that a long offer text that mentions everything
does not pass on the demand's words alone.
"""

from __future__ import annotations

import numpy as np

from indexes.analyzer import Analyzer
from indexes.cedict import dictionary
from indexes.translate import to_chinese, to_english
from matcher.explain import GENERIC_TERMS
from matcher.records import Demand, Patent
from matcher.served import Snapshot
from matcher.texts import context_text

GLOSSES_PER_WORD = 4  # a Chinese word's first CC-CEDICT glosses tried against the English patent


# Words of SME demand titles that say little about the technique wanted, beyond ``explain.GENERIC_TERMS``
WEAK_TITLE_TERMS = GENERIC_TERMS | frozenset("改良 新型 管理 信息 智能 平台 工业 寻求 研究 关键".split())
# English glosses that say as little: a Chinese title word whose every gloss is among these is no evidence across
# languages (管理 -> manage, 改良 -> improve)
WEAK_GLOSSES = frozenset("""system method device apparatus process information manage management improve improvement
data network technology application use control equipment unit module structure material product production quality
efficiency performance new type machine mechanism system platform industry research key intelligent smart""".split())


def title_words(snap: Snapshot, demand: Demand) -> dict[str, float]:
    """The demand title's informative words (two characters or more, not weak: ``WEAK_TITLE_TERMS``) and their
    idf in ``snap``'s BM25 index; a word no document has (nobody offers it) weighs as much as the rarest word."""
    analyzer = snap.bm25.analyzer
    words = [t for t in dict.fromkeys(analyzer.tokenize(demand.title)) if len(t) >= 2 and t not in WEAK_TITLE_TERMS]
    rarest = float(np.log(len(snap.bm25.ids) + 1))
    return {t: snap.bm25.idf(t) or rarest for t in words}


def title_coverage(snap: Snapshot, demand: Demand, patent: Patent) -> float | None:
    """The idf-weighted share of the demand title's informative words found in the patent's title or abstract,
    as written (same language) or through a dictionary gloss (other language); None when the title has no
    informative word the index knows."""
    analyzer = snap.bm25.analyzer
    if demand.language == "en" and patent.language != "en":  # an English title: its Chinese rendering's words
        demand = demand.model_copy(update={"title": to_chinese(demand.title)})
    weights = title_words(snap, demand)
    across = demand.language != patent.language and demand.language != "en"
    if across:
        weak = {analyzer.tokenize(w)[0] for w in WEAK_GLOSSES if analyzer.tokenize(w)}
        glosses = {t: _glosses(analyzer, t) for t in weights}
        weights = {t: w for t, w in weights.items() if not glosses[t] or any(set(g) - weak for g in glosses[t])}
    total = sum(weights.values())
    if not total:
        return None
    have = set(analyzer.tokenize(context_text(patent)))
    if across:
        found = {t for t in weights if any(all(w in have for w in gloss) for gloss in glosses[t])}
    else:
        found = {t for t in weights if t in have}
    return sum(w for t, w in weights.items() if t in found) / total


def topic_coverage(snap: Snapshot, demand: Demand, patent: Patent) -> float | None:
    """The other way round: the idf-weighted share of the patent title's informative words that the demand's title
    or description has (same language only; None across languages or for a title with none). A patent about
    something else (冬小麦 remote sensing for a lift-monitoring demand) fails it even when its long text happens to
    hold the demand's words."""
    if demand.language != patent.language:
        return None
    analyzer = snap.bm25.analyzer
    rarest = float(np.log(len(snap.bm25.ids) + 1))
    words = [t for t in dict.fromkeys(analyzer.tokenize(patent.title)) if len(t) >= 2 and t not in WEAK_TITLE_TERMS]
    weights = {t: snap.bm25.idf(t) or rarest for t in words}
    total = sum(weights.values())
    if not total:
        return None
    have = set(analyzer.tokenize(context_text(demand)))
    return sum(w for t, w in weights.items() if t in have) / total


_GLOSSES: dict[tuple[int, str], list[tuple[str, ...]]] = {}


def _glosses(analyzer: Analyzer, word: str) -> list[tuple[str, ...]]:
    """Each English gloss of the Chinese ``word`` as the analysed (stemmed, stop-worded) words a document must all
    have; a word the dictionary lacks, by the glosses of its sub-words, all of which it must have (地理信息 needs
    geography and information)."""
    key = (id(analyzer), word)
    if key not in _GLOSSES:
        glosses = dictionary().zh_en.get(word)
        if glosses:
            out = [tuple(analyzer.tokenize(g)) for g in glosses[:GLOSSES_PER_WORD]]
        else:
            out = [tuple(dict.fromkeys(analyzer.tokenize(to_english(word))))]
        _GLOSSES[key] = [g for g in out if g]
    return _GLOSSES[key]


def answers_a_need(patent: Patent) -> bool:
    """False for a design patent (外观设计: an ornamental design, no technique to license for a need)."""
    return patent.patent_type != "design"
