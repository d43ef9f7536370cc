"""Which characters are Chinese: the one CJK rule every part of patent-match uses.

``CJK_CHARS`` is a regex character-class body (no brackets, to combine with other characters): the CJK Unified
Ideographs with extension A and extension B, and the CJK Compatibility Ideographs. The analyzer cuts text into
runs by it (so it decides what jieba segments and what is a Latin token); ingest reads a record's language by it,
the searcher a query's, translation a dictionary entry's. Radicals, strokes, kana and CJK punctuation are not in it:
none carries a Chinese word on its own.

The language rules built on it:
- ``has_cjk``: any Chinese character at all (a record is Chinese if its text has one; a query can match
  Chinese text if it has one);
- ``dominant_language``: "zh" when the Chinese characters are at least half the Latin letters (a query in
  which a Chinese phrase dominates a Latin model number is Chinese; an English sentence quoting one Chinese word
  is English); used to decide which way a query is translated.
"""

from __future__ import annotations

import re

CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
CJK = re.compile(f"[{CJK_CHARS}]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Chinese character (``CJK_CHARS``)."""
    return CJK.search(text) is not None


def dominant_language(text: str) -> str:
    """"zh" if ``text`` has Chinese characters and they are at least half as many as its Latin letters, else "en"."""
    cjk = len(CJK.findall(text))
    return "zh" if cjk and cjk * 2 >= len(_LATIN_LETTER.findall(text)) else "en"
