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


def label(key: str, lang: str, fallback: str) -> str:
    """The string ``key`` in ``lang`` where the catalogue has it, else ``fallback`` (a name shown as it is)."""
    return text(key, lang) if key in catalogue() else fallback


def texts(prefix: str, lang: str = DEFAULT_LANG) -> dict[str, str]:
    """Every string whose key starts with ``prefix``, keyed by the rest of the key (for a template's labels)."""
    lang = check_lang(lang)
    return {key[len(prefix):]: forms[lang] for key, forms in catalogue().items() if key.startswith(prefix)}


class Message:
    """A catalogue string not yet put into words: its key and parameters, rendered in a language when shown.

    Errors carry a ``Message`` so the edge that shows them (the CLI's ``--lang``, the HTTP request's
    ``Accept-Language``) picks the language; ``key`` is the stable, machine-readable part. A parameter may be a
    ``Message`` itself: it is rendered in the same language."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, **params: Any) -> None:
        if key not in catalogue():
            raise KeyError(key)  # a bug, not input: fail where the message is made, not where it is shown
        self.key, self.params = key, params

    def text(self, lang: str = DEFAULT_LANG) -> str:
        params = {k: v.text(lang) if isinstance(v, Message) else v for k, v in self.params.items()}
        return text(self.key, lang, **params)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"Message({self.key!r}, **{self.params!r})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (a run's summary): the key and the parameters, each rendered in English if it is a
        ``Message`` itself."""
        return {"key": self.key, "params": {k: v.text("en") if isinstance(v, Message) else v
                                            for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(str(data["key"]), **dict(data.get("params") or {}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)


class LocalisedError(Exception):
    """An error whose words are a catalogue string: ``key`` is its stable code, ``message(lang)`` puts it in Chinese
    or English at the edge that shows it, and ``str()`` is the English form (for logs). ``as_message()`` hands it on
    as a ``Message`` parameter of another string, rendered in that string's language."""

    def __init__(self, key: str, **params: Any) -> None:
        self.key, self.params = key, params
        super().__init__(self.as_message().text("en"))

    def as_message(self) -> Message:
        return Message(self.key, **self.params)

    def message(self, lang: str = DEFAULT_LANG) -> str:
        return self.as_message().text(lang)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as key and parameters (a Ray worker's error), not as text
        return (_rebuild_error, (type(self), self.key, self.params))


def _rebuild_error(cls: type[LocalisedError], key: str, params: dict[str, Any]) -> LocalisedError:
    return cls(key, **params)


def pick_lang(value: str | None, default: Lang = DEFAULT_LANG) -> Lang:
    """The language a user asked for: ``zh`` / ``en``, or an HTTP ``Accept-Language`` list (``en-US,en;q=0.9``),
    of which the supported language with the highest weight wins (the first listed on a tie); anything else, or
    nothing, is ``default``."""
    best: tuple[float, int, Lang] | None = None
    for position, item in enumerate((value or "").split(",")):
        tag, _, weight = item.strip().partition(";")
        primary = tag.strip().split("-")[0].lower()
        if primary not in LANGS:
            continue
        q = 1.0
        weight = weight.strip()
        if weight.startswith("q="):
            try:
                q = float(weight[2:])
            except ValueError:
                continue
        if q <= 0:
            continue
        if best is None or (q, -position) > (best[0], -best[1]):
            best = (q, position, primary)  # type: ignore[assignment]
    return best[2] if best else default
