"""One catalogue of every user-facing string, Chinese first, English second.

The catalogue is data: ``matcher/messages/<area>.yaml`` files (one per area: ``export``, ``cli``, ``web``,
``errors`` …), each mapping a key to its two forms::

    search.empty:
      zh: 没有结果
      en: No results

Keys are unique across all files (a key defined twice is an error at load), and both forms carry the same
``{placeholders}``, which ``text`` fills with ``str.format``. Code asks for a key and a language and never holds
display strings of its own, so templates, CLI tables and exports read from one place.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"
MESSAGES_DIR = Path(__file__).with_name("messages")


class CatalogueError(ValueError):
    """A catalogue file is malformed: a key defined twice, a missing form, or placeholders that differ."""


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_catalogue(folder: Path = MESSAGES_DIR) -> dict[str, dict[Lang, str]]:
    """Every ``*.yaml`` under ``folder``, merged and checked."""
    merged: dict[str, dict[Lang, str]] = {}
    where: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        if not isinstance(data, dict):
            raise CatalogueError(f"{path.name}: the file must map keys to {{zh, en}}")
        for key, forms in data.items():
            if key in merged:
                raise CatalogueError(f"{path.name}: {key}: already defined in {where[key]}")
            if not isinstance(forms, dict) or set(forms) != set(LANGS):
                raise CatalogueError(f"{path.name}: {key}: needs exactly the forms {', '.join(LANGS)}")
            if not all(isinstance(forms[lang], str) and forms[lang].strip() for lang in LANGS):
                raise CatalogueError(f"{path.name}: {key}: every form must be a non-empty string")
            if _placeholders(forms["zh"]) != _placeholders(forms["en"]):
                raise CatalogueError(f"{path.name}: {key}: the zh and en forms use different placeholders")
            merged[str(key)] = {lang: forms[lang] for lang in LANGS}
            where[str(key)] = path.name
    return merged


@cache
def catalogue() -> dict[str, dict[Lang, str]]:
    return load_catalogue()


def check_lang(lang: str) -> Lang:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    return lang  # type: ignore[return-value]


def text(key: str, lang: str = DEFAULT_LANG, **params: Any) -> str:
    """The string ``key`` in ``lang``, with ``params`` filled in. An unknown key is a KeyError (a bug, not input)."""
    template = catalogue()[key][check_lang(lang)]
    return template.format(**params) if params else template


def texts(prefix: str, lang: str = DEFAULT_LANG) -> dict[str, str]:
    """Every string whose key starts with ``prefix``, keyed by the rest of the key (for a template's labels)."""
    lang = check_lang(lang)
    return {key[len(prefix):]: forms[lang] for key, forms in catalogue().items() if key.startswith(prefix)}
