"""Bilingual text analysis: one function from text to index terms, for Chinese, English and mixed text.

Steps, in order (the same for documents and queries, so they always meet):

1. NFKC normalisation folds full-width forms to half-width (``ＬｉＦｅＰＯ４`` -> ``LiFePO4``, ``３`` -> ``3``).
2. Traditional characters fold to simplified with OpenCC ``t2s`` (``鋰電池`` -> ``锂电池``).
3. The text is cut into runs by script, and each run is analysed on its own, token by token:
   - CJK runs are segmented with jieba in search mode (long words plus their sub-words, so ``锂离子电池``
     also yields ``离子`` / ``电池``), with a patent-domain user dictionary of human keyphrases.
   - Latin runs are lower-cased. Words of letters only are stop-worded and stemmed (Snowball English);
     tokens that mix letters and digits (``LiFePO4``, ``H2O2``, ``5G``), chemical formulas (``SiC``, ``GaN``)
     and numbers (``3.5``, ``18650``) are kept whole and unstemmed: a stemmer would mangle them.
4. A small stop list removes function words and patent boilerplate (所述, 一种, 其特征在于, wherein ...).

The configuration is data (``AnalyzerConfig``), saved in every index manifest, so an index is always
queried with the analysis it was built with.
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

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df"
# A run is CJK characters, or a Latin/number token that may join parts with '.', '-' or '/' (LiNi0.8Co0.1O2, Wi-Fi).
_WORD = rf"[^\W_{_CJK}]+"
_RUN = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<latin>{_WORD}(?:[.\-/]{_WORD})*)")
_HAS_DIGIT = re.compile(r"\d")
# Two or more element symbols, each with an optional count: SiC, GaN, NaCl, LiFePO4, CO2.
_FORMULA = re.compile(r"^(?:[A-Z][a-z]?\d*(?:\.\d+)?){2,}$")


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything that changes which terms a text becomes. Stored in index manifests."""

    version: int = ANALYZER_VERSION
    cjk_mode: str = "search"  # "search" (jieba.cut_for_search) or "accurate" (jieba.cut)
    user_dict: str | None = "patent_zh"  # a bundled dictionary name, a file path, or None
    t2s: bool = True
    stem_language: str | None = "english"
    stopwords: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyzerConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown analyzer settings: {sorted(unknown)}")
        config = cls(**data)
        if config.version != ANALYZER_VERSION:
            raise ValueError(f"analyzer version {config.version} is not supported (this build: {ANALYZER_VERSION})")
        if config.cjk_mode not in ("search", "accurate"):
            raise ValueError(f"cjk_mode must be 'search' or 'accurate', not {config.cjk_mode!r}")
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
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        if self.config.user_dict:
            self._jieba.load_userdict(str(user_dict_path(self.config.user_dict)))
        self._t2s = opencc.OpenCC("t2s") if self.config.t2s else None
        self._stemmer_lang = self.config.stem_language
        self._local = threading.local()  # PyStemmer objects are not thread-safe

    def _stem(self, word: str) -> str:
        if not self._stemmer_lang:
            return word
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = Stemmer.Stemmer(self._stemmer_lang)
        return stemmer.stemWord(word)

    def normalize(self, text: str) -> str:
        """Full-width -> half-width (NFKC), traditional -> simplified."""
        text = unicodedata.normalize("NFKC", text)
        if self._t2s is not None:
            text = self._t2s.convert(text)
        return text

    def tokenize(self, text: str) -> list[str]:
        """The index terms of ``text``, in order, with repeats (BM25 counts them)."""
        terms: list[str] = []
        stop = self.config.stopwords
        for match in _RUN.finditer(self.normalize(text)):
            cjk = match.group("cjk")
            if cjk is not None:
                words = self._jieba.cut_for_search(cjk) if self.config.cjk_mode == "search" else self._jieba.cut(cjk)
                terms.extend(w for w in words if not (stop and w in STOPWORDS_ZH))
            else:
                terms.extend(self._latin_terms(match.group("latin"), stop))
        return terms

    def _latin_terms(self, token: str, stop: bool) -> Iterable[str]:
        if _HAS_DIGIT.search(token) or _FORMULA.match(token):
            # Numbers, model numbers, chemical formulas: whole, lower-cased, unstemmed.
            yield token.lower()
            return
        for word in re.split(r"[.\-/]", token.lower()):
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


@lru_cache(maxsize=8)
def get_analyzer(config: AnalyzerConfig | None = None) -> Analyzer:
    """A shared analyzer per configuration (building one loads jieba's dictionary, ~1 s)."""
    return Analyzer(config or AnalyzerConfig())
