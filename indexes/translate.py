"""Dictionary query translation, Chinese <-> English: text in, text out, from CC-CEDICT (``indexes.cedict``).

- zh -> en: the text is segmented (rjieba, jieba's dictionary); each word takes the first glosses of its
  dictionary entries; a word the dictionary lacks falls back to its longest known sub-words, left to right.
- en -> zh: the query is matched against the dictionary's reverse index longest phrase first (3, 2, 1 words,
  naive singular as a fallback), and each phrase keeps a few headwords in the dictionary's order.

``render_query(text, target, weight)`` renders a query for an index in ``target`` language: as written if it is
already in that language, else translated, keeping only the candidates ``weight`` says the index can match
(``weight(candidate) > 0``, e.g. its idf in the target index) and, among those, the most specific first.
Latin tokens with digits (``LiFePO4``, ``18650``) pass through untranslated: they are written the same in both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from indexes.cedict import MAX_GLOSS_WORDS, Dictionary, dictionary
from indexes.script import CJK, CJK_CHARS, dominant_language

Lang = str  # "zh" | "en"

_TOKENS = re.compile(f"[{CJK_CHARS}]+|" r"[A-Za-z0-9][A-Za-z0-9.\-+/]*[A-Za-z0-9]|[A-Za-z0-9]")
GLOSSES_PER_WORD = 2  # zh -> en: glosses kept per Chinese word
CANDIDATES_PER_PHRASE = 3  # en -> zh: Chinese words kept per English phrase
_STOP_EN = frozenset(
    """a an and are as at be but by for from has have if in into is it its of on or such that the their then there
    these they this to was were will with which we our us you your i me my want wants need needs looking seeking
    seek way ways can could would should want some any get make use using used very so not no also more most
    something help do does keep keeps yet once both every each plus how what who""".split()
)
_STOP_ZH = frozenset(
    """的 了 和 与 及 或 等 在 是 为 对 将 其 之 以 于 由 被 把 从 向 并 且 而 也 又 就 都 该 此 这 那 个 所 所述
    一种 我们 我司 需要 希望 寻求 需求 想 要 能 能够 可以 一个 如何 怎么 什么 用 用于 通过""".split()
)


@lru_cache(maxsize=1)
def _segmenter() -> Callable[[str], list[str]]:
    import rjieba

    return rjieba.Jieba().cut


def _singular(word: str) -> Iterable[str]:
    if word.endswith("ies") and len(word) > 4:
        yield word[:-3] + "y"
    if word.endswith("es") and len(word) > 3:
        yield word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        yield word[:-1]
    if word.endswith("ing") and len(word) > 5:
        yield word[:-3]
        yield word[:-3] + "e"
    if word.endswith("ed") and len(word) > 4:
        yield word[:-2]
        yield word[:-1]


def _zh_words(d: Dictionary, run: str) -> list[str]:
    """A CJK run as dictionary words: the segmenter's words, unknown ones split into longest known sub-words."""
    out: list[str] = []
    for word in _segmenter()(run):
        if word in d.zh_en or len(word) == 1:
            out.append(word)
            continue
        i = 0
        while i < len(word):
            for j in range(min(len(word), i + d.longest_zh), i, -1):
                if word[i:j] in d.zh_en or j == i + 1:
                    out.append(word[i:j])
                    i = j
                    break
    return out


Weight = Callable[[str], float]
Docs = Callable[[str], np.ndarray]  # the sorted positions of the target documents that hold a candidate


@dataclass
class _Group:
    """The candidates of one source word or phrase, in the dictionary's order, and how many to keep."""

    candidates: list[str]
    keep: int


def _usable(candidates: Iterable[str], weight: Weight | None) -> list[str]:
    if weight is None:
        return list(candidates)
    return [c for c in candidates if weight(c) > 0]


def _cooccurrence(held: list[np.ndarray]) -> np.ndarray:
    """(n, n) int64: entry (i, j) is how many documents ``held[i]`` and ``held[j]`` share (lists of sorted, unique
    positions), every pair at once as one sparse product."""
    import scipy.sparse as sp

    n = len(held)
    sizes = np.array([h.size for h in held], dtype=np.int64)
    if not sizes.sum():
        return np.zeros((n, n), dtype=np.int64)
    cols = np.concatenate(held).astype(np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), sizes)
    a = sp.csr_matrix((np.ones(cols.size, dtype=np.int64), (rows, cols)), shape=(n, int(cols.max()) + 1))
    return np.asarray((a @ a.T).toarray(), dtype=np.int64)


def _resolve(items: list[str | _Group], docs: Docs | None) -> str:
    """The translation as text: each group cut to its ``keep`` candidates. With ``docs``, a group's candidates are
    ranked first by how well they co-occur, in the target documents, with the other groups' candidates (the sense
    of "iron" that goes with "lithium" and "phosphate" is 铁, not 熨烫), the dictionary's order breaking ties.

    A candidate's support is the sum, over the other groups, of log(1 + the most documents it shares with one of
    that group's candidates). Every shared count comes from one sparse co-occurrence product, so a long query (a
    demand's title and description: a hundred words, several senses each) costs milliseconds, not the seconds that
    one intersection per pair of candidates took."""
    groups = [g for g in items if isinstance(g, _Group) and g.candidates]
    ambiguous = [i for i, g in enumerate(groups) if len(g.candidates) > g.keep]
    if docs is not None and len(groups) > 1 and ambiguous:
        names = list(dict.fromkeys(c for g in groups for c in g.candidates))
        index = {c: i for i, c in enumerate(names)}
        shared = _cooccurrence([docs(c) for c in names])
        asked = list(dict.fromkeys(c for i in ambiguous for c in groups[i].candidates))
        rows = shared[[index[c] for c in asked]]
        # best[h][c]: log(1 + the most documents candidate c shares with one candidate of group h)
        best = [dict(zip(asked, map(math.log1p, rows[:, [index[o] for o in h.candidates]].max(axis=1).tolist()),
                         strict=True)) for h in groups]
        for gi in ambiguous:
            g = groups[gi]
            scores = {c: sum(best[hi][c] for hi in range(len(groups)) if hi != gi) for c in g.candidates}
            g.candidates = sorted(g.candidates, key=lambda c: -scores[c])  # stable: dictionary order breaks ties
    out: list[str] = []
    for item in items:
        if isinstance(item, _Group):
            out.extend(item.candidates[:item.keep])
        else:
            out.append(item)
    return " ".join(out)


def to_english(text: str, weight: Weight | None = None, per_word: int = GLOSSES_PER_WORD,
               docs: Docs | None = None) -> str:
    """Chinese text -> English words (glosses), Latin tokens kept as written."""
    d = dictionary()
    parts: list[str | _Group] = []
    for token in _TOKENS.findall(text):
        if not CJK.match(token):
            parts.append(token)
            continue
        for word in _zh_words(d, token):
            if word in _STOP_ZH:
                continue
            glosses = d.zh_en.get(word)
            if glosses:
                parts.append(_Group(_usable(glosses, weight), per_word))
    return _resolve(parts, docs)


def to_chinese(text: str, weight: Weight | None = None, per_phrase: int = CANDIDATES_PER_PHRASE,
               docs: Docs | None = None) -> str:
    """English text -> Chinese words, longest phrase first; Chinese and alphanumeric tokens kept as written."""
    d = dictionary()
    parts: list[str | _Group] = []
    words: list[str] = []

    def flush() -> None:
        i = 0
        while i < len(words):
            for n in range(min(MAX_GLOSS_WORDS, len(words) - i), 0, -1):
                phrase = words[i:i + n]
                if n == 1 and phrase[0] in _STOP_EN:
                    hit: tuple[str, ...] | None = ()
                else:
                    hit = _lookup(d, phrase)
                if hit is not None:
                    if n > 1 or phrase[0] not in _STOP_EN:
                        parts.append(_Group(_usable(hit, weight), per_phrase))
                    i += n
                    break
            else:
                i += 1  # an English word the dictionary does not know: nothing to say in Chinese
        words.clear()

    for token in _TOKENS.findall(text):
        if CJK.match(token) or any(ch.isdigit() for ch in token):
            flush()
            parts.append(token)
        else:
            words.extend(w for w in re.split(r"[\-/+.]", token.lower()) if w)
    flush()
    return _resolve(parts, docs)


def _lookup(d: Dictionary, phrase: list[str]) -> tuple[str, ...] | None:
    key = " ".join(phrase)
    if key in d.en_zh:
        return d.en_zh[key]
    *head, last = phrase
    for form in _singular(last):
        key = " ".join([*head, form])
        if key in d.en_zh:
            return d.en_zh[key]
    return None


def translate(text: str, target: Lang, weight: Weight | None = None, docs: Docs | None = None) -> str:
    """``text`` in ``target`` language ("zh" or "en"), word by word from the dictionary."""
    if target == "en":
        return to_english(text, weight, docs=docs)
    if target == "zh":
        return to_chinese(text, weight, docs=docs)
    raise ValueError(f"target language must be 'zh' or 'en', not {target!r}")


def render_query(text: str, target: Lang, weight: Weight | None = None, docs: Docs | None = None
                 ) -> tuple[str, bool]:
    """The query as an index in ``target`` language should see it, and whether it was translated.

    ``weight(candidate)`` is how specific a candidate is in that index (0: the index cannot match it, the
    candidate is dropped); among the candidates of one source word the order is the dictionary's, so the most
    usual sense comes first. A query already in ``target`` language is returned as written.
    """
    if target not in ("zh", "en"):
        raise ValueError(f"target language must be 'zh' or 'en', not {target!r}")
    if dominant_language(text) == target:
        return text, False
    return translate(text, target, weight, docs), True
