"""Bilingual text analysis: one function from text to index terms, for Chinese, English and mixed text.

Steps, in order (the same for documents and queries, so they always meet):

1. NFKC normalisation folds full-width forms to half-width (``ＬｉＦｅＰＯ４`` -> ``LiFePO4``, ``３`` -> ``3``).
2. Traditional characters fold to simplified with OpenCC ``t2s`` (``鋰電池`` -> ``锂电池``).
3. The text is cut into runs by script, and each run is analysed on its own, token by token:
   - CJK runs are segmented with jieba in search mode (long words plus their sub-words, so ``锂离子电池``
     also yields ``离子`` / ``电池``), with a patent-domain user dictionary of human keyphrases. The segmenter
     is ``rjieba`` (jieba's algorithm and dictionary in Rust, ~10x faster) or the reference Python ``jieba``;
     see ``AnalyzerConfig.segmenter``.
   - Latin runs are lower-cased. Words of letters only are stop-worded and stemmed (Snowball English);
     tokens that mix letters and digits (``LiFePO4``, ``H2O2``, ``5G``), chemical formulas (``SiC``, ``GaN``)
     and numbers (``3.5``, ``18650``) are kept whole and unstemmed: a stemmer would mangle them.
4. A small stop list removes function words and patent boilerplate (所述, 一种, 其特征在于, wherein ...).

The configuration is data (``AnalyzerConfig``), saved in every index manifest, so an index is always
queried with the analysis it was built with.

Segmenters. ``rjieba`` (jieba-rs) ports jieba 0.42's algorithm and ships the same dictionary and HMM model.
On the bundled sample (262,248 CJK runs, 2.67M characters) both give identical output on every run but one (a
garbled OCR string of repeated characters, ``相相相...机机机``, where equal-probability paths are broken the
other way), ~11x faster (1.1 s against 11.7 s). One difference is removed here: Python jieba treats only
U+4E00-U+9FD5 as Han and emits any other CJK character (extension A/B, compatibility ideographs, U+9FD6-U+9FFF)
as a word of its own, while jieba-rs feeds them to its HMM, which can glue two of them together; with rjieba such
characters are split off before segmentation, as jieba does. The user dictionary is loaded through
``add_word(word, freq, tag)`` (rjieba has no ``load_userdict``). Manifests written before the setting existed
have no ``segmenter`` key and read as ``"jieba"``, so old indexes keep the segmenter they were built with.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jieba
import opencc
import Stemmer

from indexes.script import CJK_CHARS

try:
    import rjieba
except ImportError:  # pragma: no cover - rjieba is a declared dependency; jieba remains usable without it
    rjieba = None

ANALYZER_VERSION = 2
jieba.setLogLevel(logging.WARNING)

# Function words, claim boilerplate and the boilerplate of demand posts. Content words (方法, 装置, system)
# stay: BM25's idf weighs them. Single characters that jieba's search mode splits off and that carry no topic
# (后, 上, 会 ...) are listed too; single characters that do (膜, 锂, 钢, 酶) are not.
STOPWORDS_ZH = frozenset(
    """的 了 和 与 及 或 等 在 是 为 对 将 其 之 以 于 由 被 把 从 向 并 且 而 也 又 就 都 该 此 这 那 个
    所 所述 一种 本发明 本实用新型 本申请 其特征 特征 在于 包括 包含 具有 根据 权利 要求 如 上述 所示 其中
    通过 进行 使用 采用 用于 一个 多个 至少 以及 并且 或者 以便 使得
    后 上 下 中 内 外 前 会 能 可 使 用 现 时 次 再 则 更 很 已 即 各 每 均 到 至 给 让 还 只 才 它 他 她
    我 你 们 我们 我司 本 种 些 类 来 去 得 着 个 能够 可以 需要 希望 寻求 需求 现有 目前 主要 一些 相关
    以上 以下 之间 方面 问题 情况 要求 实现 提供 提高 解决""".split()
)
STOPWORDS_EN = frozenset(
    """a an and are as at be but by for from has have if in into is it its of on or such that the their then
    there these they this to was were will with which wherein whereby thereof therein herein said being been
    can may also each other one more than not no so""".split()
)

# A run is CJK characters, or a Latin/number token that may join parts with '.', '-' or '/' (LiNi0.8Co0.1O2, Wi-Fi).
_WORD = rf"[^\W_{CJK_CHARS}]+"
_RUN = re.compile(rf"(?P<cjk>[{CJK_CHARS}]+)|(?P<latin>{_WORD}(?:[.\-/]{_WORD})*)")
_HAS_DIGIT = re.compile(r"\d")
# Two or more element symbols, each with an optional count: SiC, GaN, NaCl, LiFePO4, CO2.
_FORMULA = re.compile(r"^(?:[A-Z][a-z]?\d*(?:\.\d+)?){2,}$")
# What Python jieba treats as Han (jieba.re_han_default without the Latin part, which our CJK runs never hold):
# not a second CJK rule, the reference segmenter's own, mimicked so rjieba cuts as jieba does.
_NOT_JIEBA_HAN = re.compile(r"[^\u4e00-\u9fd5]")
_JIEBA_PIECES = re.compile(r"[\u4e00-\u9fd5]+|[^\u4e00-\u9fd5]")
# jieba's user-dictionary line: word, optional frequency, optional part-of-speech tag.
_USERDICT_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")
# (character, its NFKC form) for the compatibility characters that fill Chinese patent text.
_NFKC_COMMON = tuple(
    (c, unicodedata.normalize("NFKC", c)) for c in "，；：（）！？％～－＝\u3000\xa0℃\u2011"
)
_LATIN_SPLIT = re.compile(r"[.\-/]")
_LATIN_CACHE_MAX = 200_000
SEGMENTERS = ("jieba", "rjieba")
LEGACY_SEGMENTER = "jieba"  # what a manifest without a segmenter setting was built with


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything that changes which terms a text becomes. Stored in index manifests."""

    version: int = ANALYZER_VERSION
    cjk_mode: str = "search"  # "search" (jieba.cut_for_search) or "accurate" (jieba.cut)
    user_dict: str | None = "patent_zh"  # a bundled dictionary name, a file path, or None
    t2s: bool = True
    stem_language: str | None = "english"
    stopwords: bool = True
    segmenter: str = "rjieba"  # "rjieba" (fast) or "jieba" (reference); same segmentation, see the module docs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyzerConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown analyzer settings: {sorted(unknown)}")
        config = cls(**{"segmenter": LEGACY_SEGMENTER, **data})
        if config.version != ANALYZER_VERSION:
            raise ValueError(f"analyzer version {config.version} is not supported (this build: {ANALYZER_VERSION})")
        if config.cjk_mode not in ("search", "accurate"):
            raise ValueError(f"cjk_mode must be 'search' or 'accurate', not {config.cjk_mode!r}")
        if config.segmenter not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, not {config.segmenter!r}")
        return config


def user_dict_path(name: str) -> Path:
    """Resolve a bundled dictionary name (``patent_zh``) or a path to a jieba user-dictionary file."""
    bundled = resources.files("indexes") / "resources" / f"userdict_{name}.txt"
    if bundled.is_file():
        return Path(str(bundled))
    path = Path(name)
    if path.is_file():
        return path
    raise FileNotFoundError(f"jieba user dictionary not found: {name!r} (neither bundled nor a file)")


class Analyzer:
    """Text -> terms. Thread-safe; build once and reuse (jieba loads its dictionary on creation)."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config or AnalyzerConfig()
        self._chars: dict[str, str] = {}  # normalize_char's cache: one entry per distinct character seen
        if self.config.segmenter not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, not {self.config.segmenter!r}")
        self._segment: Callable[[str], Iterable[str]]
        if self.config.segmenter == "rjieba":
            if rjieba is None:
                raise ImportError("the analyzer's segmenter is 'rjieba' but rjieba is not installed: "
                                  "pip install rjieba (or use segmenter='jieba')")
            self._rjieba = rjieba.Jieba()
            if self.config.user_dict:
                for word, freq, tag in read_user_dict(user_dict_path(self.config.user_dict)):
                    self._rjieba.add_word(word, freq, tag)
            cut = self._rjieba.cut_for_search if self.config.cjk_mode == "search" else self._rjieba.cut
            self._segment = lambda run: _split_like_jieba(cut, run)
        else:
            self._jieba = jieba.Tokenizer()
            self._jieba.initialize()
            if self.config.user_dict:
                self._jieba.load_userdict(str(user_dict_path(self.config.user_dict)))
            self._segment = self._jieba.cut_for_search if self.config.cjk_mode == "search" else self._jieba.cut
        self._t2s = opencc.OpenCC("t2s") if self.config.t2s else None
        self._stemmer_lang = self.config.stem_language
        self._local = threading.local()  # PyStemmer objects are not thread-safe
        # Latin token -> its terms. Words repeat (Zipf), and each costs two regex tests, a split and a stemmer
        # call: profiling English abstracts showed that as ~30% of tokenization. Bounded: cleared when full.
        self._latin_cache: dict[str, tuple[str, ...]] = {}

    def _stem(self, word: str) -> str:
        if not self._stemmer_lang:
            return word
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = Stemmer.Stemmer(self._stemmer_lang)
        return stemmer.stemWord(word)

    def normalize(self, text: str) -> str:
        """Full-width -> half-width (NFKC), traditional -> simplified."""
        text = nfkc(text)
        if self._t2s is not None:
            text = self._t2s.convert(text)
        return text

    def normalize_char(self, ch: str) -> str:
        """``normalize`` of one character, cached: an explanation maps offsets character by character, and a text
        has few distinct characters."""
        out = self._chars.get(ch)
        if out is None:
            out = self._chars[ch] = self.normalize(ch)
        return out

    def tokenize(self, text: str) -> list[str]:
        """The index terms of ``text``, in order, with repeats (BM25 counts them)."""
        terms: list[str] = []
        stop = self.config.stopwords
        for cjk, token in _RUN.findall(self.normalize(text)):
            if cjk:
                words = self._segment(cjk)
                terms.extend([w for w in words if w not in STOPWORDS_ZH] if stop else words)
            else:
                cached = self._latin_cache.get(token)
                if cached is None:
                    cached = tuple(self._latin_terms(token, stop))
                    if len(self._latin_cache) >= _LATIN_CACHE_MAX:
                        self._latin_cache.clear()
                    self._latin_cache[token] = cached
                terms.extend(cached)
        return terms

    def _latin_terms(self, token: str, stop: bool) -> Iterable[str]:
        if _HAS_DIGIT.search(token) or _FORMULA.match(token):
            # Numbers, model numbers, chemical formulas: whole, lower-cased, unstemmed.
            yield token.lower()
            return
        for word in _LATIN_SPLIT.split(token.lower()):
            if not word or (stop and word in STOPWORDS_EN):
                continue
            if word.isascii():
                yield self._stem(word)
            else:
                yield word  # other scripts (Cyrillic, kana, ...) pass through lower-cased

    def tokenize_many(
        self, texts: Iterable[str], progress: Callable[[int], None] | None = None
    ) -> list[list[str]]:
        """Tokenize many texts; ``progress(n)`` is called with the count done every 1,000 texts."""
        out: list[list[str]] = []
        for i, text in enumerate(texts, 1):
            out.append(self.tokenize(text))
            if progress is not None and i % 1000 == 0:
                progress(i)
        if progress is not None:
            progress(len(out))
        return out


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, exactly, about twice as fast on Chinese patent text.

    The commonest compatibility characters of Chinese text (full-width punctuation, ～, ％, ℃, no-break spaces) are
    replaced first by what NFKC maps them to (none of them composes with a neighbour, so the result is exactly
    NFKC's); a text with nothing else to fold then skips the full normalisation (``is_normalized`` is a quick
    check). Profiling tokenization showed NFKC at ~14% of it.
    """
    for full, half in _NFKC_COMMON:
        if full in text:
            text = text.replace(full, half)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def read_user_dict(path: Path) -> list[tuple[str, int | None, str | None]]:
    """(word, frequency or None, tag or None) per line of a jieba user dictionary, parsed as jieba parses it."""
    entries: list[tuple[str, int | None, str | None]] = []
    for line in path.read_text("utf-8").lstrip("\ufeff").splitlines():
        line = line.strip()
        if not line:
            continue
        match = _USERDICT_LINE.match(line)
        if match is None:  # pragma: no cover - the pattern matches any non-empty line
            continue
        word, freq, tag = match.groups()
        entries.append((word, int(freq) if freq is not None else None, tag.strip() if tag is not None else None))
    return entries


def _split_like_jieba(cut: Callable[[str], list[str]], run: str) -> list[str]:
    """Segment a CJK run with ``cut`` the way Python jieba would: characters it does not treat as Han stand alone."""
    if _NOT_JIEBA_HAN.search(run) is None:
        return cut(run)
    words: list[str] = []
    for piece in _JIEBA_PIECES.findall(run):
        if len(piece) == 1 and _NOT_JIEBA_HAN.match(piece):
            words.append(piece)
        else:
            words.extend(cut(piece))
    return words


@lru_cache(maxsize=8)
def get_analyzer(config: AnalyzerConfig | None = None) -> Analyzer:
    """A shared analyzer per configuration (building one loads jieba's dictionary, ~1 s)."""
    return Analyzer(config or AnalyzerConfig())
