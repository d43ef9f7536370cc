"""Who holds a technology offer, when its text says so (Chinese offers rarely have an applicant column).

Only phrasings that name the owner or maker are read, each a rule with an id that the record keeps:

- ``patent-holder``: ``本产品根据泉州师范学院专利技术（ZL201720001285.X）`` (the organisation whose patent it is);
- ``unit-label``: ``完成单位：…``, ``承担单位为…``, ``育种者：…``, ``专利权人：…``, ``知识产权归…``;
- ``made-by``: ``由<org>选育/育成/研制/研发/完成/主持…``, ``<variety>是<org>(于2009年)选育/育成…``,
  ``<org>独立研发``, ``<org>研制的``. (``<org>选育的`` is not read: breeders name their parents' breeders so.)

The organisation is a run of Chinese characters ending in an organisation word (大学, 学院, 研究所, 研究院, 科学院,
公司, 集团, 实验室, 中心 …). Organisations named only as testers, partners or examples (``经…鉴定``,
``例如北京大学``, ``与…合作``) are not holders and are not read.

``name_key`` is a holder's identity: two spellings of one name (``华为技术有限公司`` / ``华为技术``, ``NVIDIA Corp`` /
``NVIDIA CORPORATION``, full-width / half-width) have one key. The store keeps it beside each applicant, so a
holder's feed and a shortlist's per-holder cap count one holder once.
"""

from __future__ import annotations

import re

from indexes.analyzer import nfkc
from indexes.script import CJK_CHARS

_NON_WORD = re.compile(r"[\W_]+")
_LEGAL_FORM = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团|"
                         r"\b(corporation|corp|incorporated|inc|limited|ltd|llc|gmbh|co|company|aps)\b\.?)",
                         re.IGNORECASE)


def name_key(name: str) -> str:
    """A holder's name without width, case, punctuation, spacing or legal form; "" when nothing else is left."""
    return _NON_WORD.sub("", _LEGAL_FORM.sub("", nfkc(name))).casefold()


_ORG_END = (r"(?:股份有限公司|有限责任公司|有限公司|公司|集团|大学|学院|研究所|研究院|科学院|农科院|"
            r"重点实验室|实验室|研究中心|推广中心|试验站)")
_ORG = rf"(?P<org>[{CJK_CHARS}（）()]{{2,30}}?" + _ORG_END + r")"
_END = r"(?=所有|[、，,。；;：:\s（(]|$)"  # a labelled unit runs to the next separator (宁夏农林科学院农作物研究所)
_MADE = r"(?:选育|育成|培育|研制|研发|研究|完成|主持|开发|承担|独立研发|自主研发|共同完成)"

RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("patent-holder", re.compile(r"(?:根据|依据|基于)" + _ORG + r"(?:的)?(?:发明|实用新型)?专利(?:技术)?")),
    ("unit-label", re.compile(r"(?:完成单位|承担单位|选育单位|育种单位|培育单位|研制单位|育种者|申报单位|专利权人|"
                              r"权利人)(?:为|是|[:：])\s*" + _ORG + _END)),
    ("unit-label", re.compile(r"(?:知识产权|专利权|品种权)(?:归|属于)" + _ORG + _END)),
    ("made-by", re.compile(r"由" + _ORG + r"(?:于[\d～~\-—年月至]+)?(?:等单位)?" + _MADE)),
    ("made-by", re.compile(r"是" + _ORG + r"(?:于[\d～~\-—年月至]+)?(?:选育|育成|培育|研制)(?!的)")),
    ("made-by", re.compile(r"(?:^|[，。；：\s])" + _ORG + r"(?:独立研发|自主研发|研制的|研发的)")),
)
_LEADING = re.compile(r"^(?:该|本|此|其|我|经|为|是|由|在|和|与|及|引进|以)+")
_NOT_IN_NAME = re.compile(r"[是的了以]|项目|公司是")


def holder_in_text(text: str) -> tuple[str, str] | None:
    """The first holder named in ``text`` by one of the rules, as ``(name, rule id)``; ``None`` if none is."""
    best: tuple[int, str, str] | None = None
    for rule, pattern in RULES:
        m = pattern.search(text)
        if m is None:
            continue
        name = _LEADING.sub("", m.group("org"))
        if len(name) < 4 or _NOT_IN_NAME.search(name):  # 公司, 该研究所, 项目是公司: no name
            continue
        if best is None or m.start("org") < best[0]:
            best = (m.start("org"), name, rule)
    return None if best is None else (best[1], best[2])
