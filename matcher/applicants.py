"""Applicant type from an applicant's name: university, institute, company or individual, by rules in a data file.

CNIPA exports rarely carry a 申请人类型 column, so a filter on applicant type would find nothing; the name usually
says it (华南理工大学, 中国科学院物理研究所, NVIDIA CORPORATION, 张伟). The rules live in
``matcher/rules/applicant_types.yaml`` (format and order explained there); an operator adds rules of their own in
files named by ``$PMATCH_APPLICANT_RULES``, tried first. ``infer_type`` returns the type and the id of the rule
that decided, which the record keeps, so every inferred value can be traced and excluded.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from matcher.records import ApplicantType
from matcher.settings import engine_settings
from matcher.texts import CJK

RULES_FILE = Path(__file__).with_name("rules") / "applicant_types.yaml"
TYPES = ("university", "institute", "company", "individual")

_DROP = re.compile(r"[\s()（）\[\]【】「」\"'“”‘’·•]+")
_EN_TOKEN = re.compile(r"[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'’\-]*\.?|[A-Z]\.")
_PERSON_TOKEN = re.compile(
    r"^(?:[A-Z\u00c0-\u00de][a-z\u00df-\u00ff'’\-]+|[A-Z]{2,}|[A-Z]\.?|(?:de|van|von|der|la|da|di|le))$")


class RulesError(ValueError):
    """A rules file is malformed (the message names the file and the rule)."""


@dataclass(frozen=True)
class Rule:
    id: str
    type: ApplicantType | None  # None: the rule decides "no type"
    how: Literal["suffix", "contains", "words", "person"]
    values: tuple[str, ...]
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    surnames: tuple[str, ...]
    files: tuple[str, ...]


def _words_pattern(words: list[str]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(w.casefold()).replace(r"\ ", r"[\s,.]+") for w in words), key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])")


def _parse(path: Path) -> tuple[list[Rule], list[str]]:
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
        raise RulesError(f"{path}: expected a mapping with a 'rules' list")
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rules", []), 1):
        where = f"{path}: rule {i}"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise RulesError(f"{where}: each rule needs an id")
        where = f"{path}: rule {raw['id']!r}"
        kind = raw.get("type")
        if kind not in (*TYPES, "none"):
            raise RulesError(f"{where}: type must be one of {', '.join(TYPES)} or none, not {kind!r}")
        hows = [h for h in ("suffix", "contains", "words", "person") if h in raw]
        if len(hows) != 1:
            raise RulesError(f"{where}: give exactly one of suffix, contains, words, person")
        how = hows[0]
        value = raw[how]
        if how == "person":
            if value not in ("zh", "en"):
                raise RulesError(f"{where}: person must be zh or en")
            values: tuple[str, ...] = (value,)
        else:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise RulesError(f"{where}: {how} must be a non-empty list of strings")
            values = tuple(value)
        rules.append(Rule(raw["id"], None if kind == "none" else kind, how, values,  # type: ignore[arg-type]
                          _words_pattern(list(values)) if how == "words" else None))
    surnames = data.get("surnames", [])
    if not isinstance(surnames, list):
        raise RulesError(f"{path}: surnames must be a list")
    return rules, [str(s) for s in surnames]


@cache
def _load(paths: tuple[str, ...]) -> RuleSet:
    rules: list[Rule] = []
    surnames: list[str] = []
    for p in paths:
        file_rules, file_surnames = _parse(Path(p))
        rules.extend(file_rules)
        surnames.extend(file_surnames)
    ids = [r.id for r in rules]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise RulesError(f"rule id {dup!r} is defined twice (in {', '.join(paths)})")
    return RuleSet(tuple(rules), tuple(sorted(set(surnames), key=len, reverse=True)), paths)


def rule_files() -> tuple[str, ...]:
    """The operator's files (``$PMATCH_APPLICANT_RULES``), then the shipped one."""
    extra = engine_settings().applicant_rule_files()
    return (*extra, str(RULES_FILE))


def load_rules() -> RuleSet:
    return _load(rule_files())


def _normal(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip()


def _is_person(name: str, lang: str, rules: RuleSet) -> bool:
    if lang == "zh":
        compact = _DROP.sub("", name)
        return (2 <= len(compact) <= 4 and all(CJK.match(c) for c in compact)
                and any(compact.startswith(s) and len(compact) > len(s) for s in rules.surnames))
    text = name.replace(",", " ")
    tokens = text.split()
    return 2 <= len(tokens) <= 5 and all(_PERSON_TOKEN.match(t) for t in tokens) and not CJK.search(name)


def infer_type(name: str, rules: RuleSet | None = None) -> tuple[ApplicantType, str] | None:
    """``(type, rule id)`` for an applicant name, or ``None`` when no rule gives a type."""
    rules = rules or load_rules()
    text = _normal(name)
    if not text:
        return None
    compact = _DROP.sub("", text)
    folded = text.casefold()
    zh = bool(CJK.search(text))
    for rule in rules.rules:
        if rule.how == "suffix":
            hit = any(compact.endswith(v) for v in rule.values)
        elif rule.how == "contains":
            hit = any(v.casefold() in folded for v in rule.values)
        elif rule.how == "words":
            hit = not zh and rule.pattern is not None and rule.pattern.search(folded) is not None
        else:
            hit = (rule.values[0] == "zh") == zh and _is_person(text, rule.values[0], rules)
        if hit:
            return None if rule.type is None else (rule.type, rule.id)
    return None
