"""IPC / CPC classification codes: one canonical form, read from every form the offices print.

The canonical form is upper case with no spaces: ``G06F21/10``, ``H01M4/58``, ``H01M`` (a subclass alone).
What is read, in any mix:

- the space the standard puts between subclass and group (``G06F 21/10``; WIPO pads it: ``G06F  21/10``),
  and any run of spaces, tabs, no-break or ideographic spaces anywhere inside a code (one space rule: every
  run of white space inside a code means nothing; white space between two codes separates them);
- full-width letters and digits (``Ｈ０１Ｍ　４／５８``, NFKC) and digits of any script (Arabic-Indic ``٤``);
- the version stamp CNIPA and the USPTO print after a code: ``(2006.01)``, ``(20130101)``, and CNIPA's
  trailing ``I`` / ``N`` (inventive / non-inventive) after it: ``G06F21/10(2013.01)I``;
- EPO/DOCDB's fixed-width form, ``G06F0021100000`` (group 4 digits, subgroup 6 digits, zero-padded).

``split_codes`` reads a spreadsheet cell holding several codes (``;`` ``,`` ``|`` new lines, or spaces between
codes); ``normalize_code`` reads one.
"""

from __future__ import annotations

import re
import unicodedata

# Canonical: section letter, class digits, subclass letter, group/subgroup.
_CODE = re.compile(r"^[A-H](\d{2}([A-Z](\d{1,4}(/\d{1,6})?)?)?)?$")
_VERSION = re.compile(r"\((?:\d{4}\.\d{2}|\d{8})\)[IN]?$")
_FIXED = re.compile(r"^([A-H]\d{2}[A-Z])(\d{4})(\d{6})$")
_SPACE = re.compile(r"\s+")
# One code as printed, white space allowed inside (between its parts) and a version stamp after it.
_PRINTED = re.compile(
    r"[A-H]\s*\d\s*\d(?:\s*[A-Z](?:\s*\d{1,4}(?:\s*/\s*\d{1,6})?)?)?"
    r"(?:\s*\(\s*(?:\d{4}\s*\.\s*\d{2}|\d{8})\s*\)(?:\s*[IN](?![A-Z0-9]))?)?"
)
_CELL_SPLIT = re.compile(r"[;；,，、|\n\r]+")


def _ascii(text: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit, upper case."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text).upper()


def normalize_code(code: str) -> str:
    """The canonical form of one code: ``'ｇ06f 21/10 (2013.01)I'`` -> ``'G06F21/10'``. Not validated: see
    ``is_valid_code``."""
    text = _SPACE.sub("", _ascii(code))
    text = _VERSION.sub("", text)
    fixed = _FIXED.match(text)
    if fixed:
        sub = fixed.group(3).rstrip("0").ljust(2, "0")
        text = f"{fixed.group(1)}{int(fixed.group(2))}/{sub}"
    return text


def is_valid_code(code: str) -> bool:
    """Whether ``code`` (canonical form) is an IPC/CPC section, class, subclass, group or subgroup."""
    return bool(_CODE.match(code))


def split_codes(cell: str) -> list[str]:
    """The codes of a spreadsheet cell, each as printed (pass them to ``normalize_code``). A part that is not a
    code comes back whole, so validation names it."""
    out: list[str] = []
    for raw in _CELL_SPLIT.split(cell):
        part = _ascii(raw).strip()  # one character per character: a lone part that is no code comes back as given
        if not part:
            continue
        found = list(_PRINTED.finditer(part))
        covered = "".join(m.group(0) for m in found)
        if found and _SPACE.sub("", covered) == _SPACE.sub("", part):
            out.extend(m.group(0) for m in found)
        else:
            out.append(raw.strip())
    return out
