"""Why a record matched: the query terms it shares and where, highlighted snippets, and the sentence closest
in meaning to the query.

Highlighting works on the original text: each character is normalised the way the analyzer normalises
(full-width -> half-width, traditional -> simplified) with a map back to its original offset, Chinese terms are
found as substrings, and English words are matched by their stems, so ``scheduling`` lights up for ``schedule``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexes.analyzer import Analyzer
from matcher.records import Demand, Patent
from matcher.texts import CJK, indexed_fields, sentences

_LATIN_WORD = re.compile(r"[A-Za-z0-9]+(?:[.\-/][A-Za-z0-9]+)*")
SNIPPET_CHARS = 120


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: list[tuple[int, int]]  # [start, end) offsets into ``text``

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "highlights": [list(h) for h in self.highlights]}

    def marked(self, before: str = "【", after: str = "】") -> str:
        out, last = [], 0
        for start, end in self.highlights:
            out += [self.text[last:start], before, self.text[start:end], after]
            last = end
        out.append(self.text[last:])
        return "".join(out)


def _normalised_with_map(analyzer: Analyzer, text: str) -> tuple[str, list[int]]:
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        norm = analyzer.normalize_char(ch) if not ch.isascii() else ch
        norm = norm or unicodedata.normalize("NFKC", ch)
        for c in norm:
            chars.append(c)
            offsets.append(i)
    return "".join(chars), offsets


def find_spans(analyzer: Analyzer, text: str, terms: set[str]) -> list[tuple[int, int]]:
    """Spans of ``text`` (original offsets) where any of the analyzer ``terms`` occurs."""
    if not text or not terms:
        return []
    norm, offsets = _normalised_with_map(analyzer, text)
    spans: list[tuple[int, int]] = []
    lowered = norm.lower()
    for term in terms:
        if CJK.search(term):
            start = lowered.find(term)
            while start != -1:
                spans.append((offsets[start], offsets[start + len(term) - 1] + 1))
                start = lowered.find(term, start + len(term))
    latin_terms = {t for t in terms if not CJK.search(t)}
    if latin_terms:
        for m in _LATIN_WORD.finditer(norm):
            if latin_terms.intersection(analyzer.tokenize(m.group())):
                spans.append((offsets[m.start()], offsets[m.end() - 1] + 1))
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, spans: list[tuple[int, int]], width: int = SNIPPET_CHARS) -> Snippet:
    """The ``width``-character window of ``text`` covering the most highlighted characters."""
    if len(text) <= width:
        return Snippet(text, spans)
    best_start, best_cover = 0, -1
    for start, _ in spans or [(0, 0)]:
        window_start = max(0, min(start - width // 4, len(text) - width))
        cover = sum(min(e, window_start + width) - max(s, window_start) for s, e in spans
                    if s < window_start + width and e > window_start)
        if cover > best_cover:
            best_start, best_cover = window_start, cover
    end = best_start + width
    for s, e in spans:  # never cut a highlighted term in half: widen the window to whole terms
        if s < best_start < e:
            best_start = s
        if s < end < e:
            end = e
    prefix = "…" if best_start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = best_start - len(prefix)
    inside = [(max(s, best_start) - shift, min(e, end) - shift) for s, e in spans if s < end and e > best_start]
    return Snippet(prefix + text[best_start:end] + suffix, inside)


def matched_terms(analyzer: Analyzer, query_terms: list[str], record: Patent | Demand,
                  weights: dict[str, float] | None = None) -> dict[str, Any]:
    """Which query terms occur in which fields (most informative first, by ``weights`` = idf), with a
    highlighted snippet per field that has any."""
    wanted = set(query_terms)
    where: dict[str, list[str]] = {}
    snippets: dict[str, dict[str, Any]] = {}
    for field, text in indexed_fields(record).items():
        if not text:
            continue
        present = wanted.intersection(analyzer.tokenize(text))
        if not present:
            continue
        for term in present:
            where.setdefault(term, []).append(field)
        spans = find_spans(analyzer, text, present)
        snippets[field] = snippet(text, spans).to_dict()
    weights = weights or {}
    ordered = sorted((t for t in dict.fromkeys(query_terms) if t in where), key=lambda t: -weights.get(t, 0.0))
    terms = [{"term": t, "fields": where[t], "weight": round(weights.get(t, 0.0), 3)} for t in ordered]
    return {"matched_terms": terms, "snippets": snippets}


def closest_sentence(query_vector: np.ndarray, record: Patent | Demand,
                     encode: Callable[[list[str]], np.ndarray]) -> dict[str, Any] | None:
    """The record's sentence whose embedding (``encode``: texts -> normalised document vectors) is nearest the
    query's, with its cosine similarity."""
    candidates = sentences(record)
    if not candidates:
        return None
    vectors = encode(candidates)
    sims = vectors @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
    best = int(np.argmax(sims))
    return {"text": candidates[best], "similarity": round(float(sims[best]), 4)}


# Words jieba's search mode emits that say nothing about the technology (besides the analyzer's stop words).
GENERIC_TERMS = frozenset(
    """提高 提供 达到 实现 方法 装置 系统 设备 技术 产品 生产 工艺 问题 解决 研发 开发 应用 领域 方面
    要求 性能 效果 作用
    结构 材料 部件 组件 单元 模块 过程 方式 部分 工作 企业 公司 行业 市场 成本 质量 效率 具体 一般 相应 以上 以下 同时
    目的 基础 有效 能力 条件 利用 得到 形成 设置 连接 相对 位于 设有 固定 安装 控制 处理 改进 优化 降低 增加 减少 满足
    method apparatus system device use base provid includ compris configur perform""".split())


def display_terms(matched: list[dict[str, Any]], limit: int = 8) -> list[str]:
    """The shared terms a person would call shared: no field labels, no digits or single characters, no generic
    words, and no fragment of a longer shared term (jieba's search mode also emits 子产 from 电子产品)."""
    terms = [str(t["term"]) for t in matched]
    kept: list[str] = []
    for term in terms:
        cjk = bool(CJK.search(term))
        if (cjk and len(term) < 2) or (not cjk and (len(term) < 3 or not term.isalpha())):
            continue
        if term in GENERIC_TERMS or any(term != other and term in other for other in terms):
            continue
        kept.append(term)
    return kept[:limit]
