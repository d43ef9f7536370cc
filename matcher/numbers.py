"""What patent numbers say: CNIPA/USPTO publication numbers and CNIPA application numbers, parsed strictly.

A number that does not parse cleanly gives ``None``, never a guess: a wrong filing year is worse than none.

**Publication numbers** (``CN114058170A``, ``CN215431234U``, ``US10001996B2``) end in a kind code (WIPO ST.16 as
each office uses it). CNIPA: ``A`` published invention *application*; ``B`` (from 2010; ``C`` before) granted
invention; ``U`` (``Y`` before 2010) utility model; ``S`` (``D`` before 2010) design. Utility models and designs
are only published when granted, so ``B/C/U/Y/S/D`` mean **granted**; ``A`` says nothing about a later grant.
*Granted is not valid*: a granted patent may have lapsed, expired or been invalidated since; the number cannot
tell. From 2010 the first digit of a 9-digit CNIPA number repeats the type (1 invention, 2 utility model, 3
design); a number whose digit contradicts its kind code is refused. Pre-1993 ``B`` publications were examined
applications, not grants, so ``B`` is only read on 9-digit numbers. USPTO: ``B1/B2`` utility grants, ``S``
designs, ``E`` reissues, ``P2/P3`` plants; a 7-digit number with a bare ``A`` is a pre-2001 grant; ``A1/A2/A9``
are pre-grant publications.

**Application numbers** (申请号; the patent number 专利号 ``ZL…`` carries the same digits): from October 2003
twelve digits ``YYYY T NNNNNNN`` plus a check character (``201720001285.X``), before that eight digits
``YY T NNNNN`` plus the check (``02145503.1``). ``T`` is the type: 1 invention, 2 utility model, 3 design, 8 PCT
invention, 9 PCT utility model entering China. The check character is the digits' weighted sum (weights 2, 3, …,
9, 2, 3, 4, 5) modulo 11, ``X`` for 10; a number whose check character disagrees is refused. A number written
without its check character is read only when a prefix (``ZL``, ``CN``, 专利号, 申请号) says what it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PatentType = Literal["invention", "utility_model", "design"]

# CNIPA kind code -> (document kind as the bundled sample names it, granted?, patent type)
CN_KINDS: dict[str, tuple[str, bool | None, PatentType]] = {
    "A": ("发明专利申请", None, "invention"),
    "B": ("发明专利", True, "invention"),
    "C": ("发明专利", True, "invention"),
    "U": ("实用新型专利", True, "utility_model"),
    "Y": ("实用新型专利", True, "utility_model"),
    "S": ("外观专利", True, "design"),
    "D": ("外观专利", True, "design"),
}
_CN_TYPE_DIGIT: dict[str, PatentType] = {"1": "invention", "2": "utility_model", "3": "design"}
_APP_TYPE_DIGIT: dict[str, PatentType] = {"1": "invention", "2": "utility_model", "3": "design", "8": "invention",
                                          "9": "utility_model"}
_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

_CN_PUB = re.compile(r"^CN(\d{6,9})([A-Z])(\d?)$")
_US_PUB = re.compile(r"^US(RE|PP|D|H|T)?(\d{4,11})([A-Z])(\d?)$")
_APP = re.compile(r"^(?:ZL|CN)?(\d{8}|\d{12})(?:[.．·]?([0-9X]))?$")
_SPACES = re.compile(r"[\s\u00a0\u3000]+")

# In free text: a prefixed number (ZL / CN / 专利号 / 申请号 ...), or a bare one written with its check character.
_PREFIX = r"(?:ZL|CN|专利号|申请号|专利申请号|授权号|申请专利号)"
_TEXT_APP = re.compile(
    r"(?<![0-9])(?P<prefix>(?:" + _PREFIX + r")[\s:：/]*(?:(?:专利号|申请号)[\s:：]*)?(?:ZL|CN)?[\s]?)?"
    r"(?P<digits>\d{12}|\d{8})(?:\s?[.．·]\s?(?P<check>[0-9Xx])(?![0-9])|(?![0-9A-Za-z.．·]))"
)
_TEXT_PUB = re.compile(r"(?<![0-9A-Za-z])CN\d{9}[ABUS](?![0-9A-Za-z])")


@dataclass(frozen=True)
class Publication:
    """A publication number's reading."""

    number: str
    office: Literal["CN", "US"]
    kind_code: str
    kind: str | None  # CNIPA: the document kind as the sample names it (发明专利申请, 发明专利 ...); US: None
    granted: bool | None  # True: a grant publication; None: the number does not say
    patent_type: PatentType | None


@dataclass(frozen=True)
class Application:
    """A CNIPA application number's reading."""

    number: str  # normalised: CN + digits + "." + check character (when given)
    filing_year: int
    patent_type: PatentType
    pct: bool  # an international (PCT) application that entered China
    checked: bool  # the check character was given and agrees


def check_character(digits: str) -> str:
    """The CNIPA check character of an 8- or 12-digit application number."""
    total = sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=False))
    rest = total % 11
    return "X" if rest == 10 else str(rest)


def parse_publication(number: str) -> Publication | None:
    """Read a CNIPA or USPTO publication number (``CN114058170A``, ``US10001996B2``); ``None`` if malformed."""
    text = _SPACES.sub("", number).upper()
    m = _CN_PUB.match(text)
    if m:
        digits, code, suffix = m.groups()
        if code not in CN_KINDS or suffix not in ("", "1", "2", "3", "8", "9"):
            return None
        label, granted, ptype = CN_KINDS[code]
        if len(digits) == 9:
            if _CN_TYPE_DIGIT.get(digits[0]) != ptype:
                return None  # the number's type digit contradicts its kind code
        elif code in ("B", "U", "S"):
            return None  # B, U, S are the post-2010 codes, which go with 9-digit numbers (pre-1993 B: not a grant)
        return Publication(text, "CN", code + suffix, label, granted, ptype)
    m = _US_PUB.match(text)
    if m:
        series, digits, code, suffix = m.groups()
        full = code + suffix
        granted: bool | None = None
        ptype: PatentType | None = None
        if series is None and full in ("B1", "B2"):
            granted, ptype = True, "invention"
        elif series is None and full == "A" and len(digits) <= 7:
            granted, ptype = True, "invention"  # before 2001 a grant had kind A; applications were not published
        elif series is None and full in ("A1", "A2", "A9") and len(digits) == 11:
            granted = None  # a pre-grant publication: a later grant is not known from this number
        elif series == "D" and full in ("S", "S1"):
            granted, ptype = True, "design"
        elif (series == "RE" and full in ("E", "E1")) or (series == "PP" and full in ("P2", "P3")):
            granted = True
        else:
            return None
        return Publication(text, "US", full, None, granted, ptype)
    return None


def parse_application(number: str, *, require_check: bool = False) -> Application | None:
    """Read a CNIPA application or patent number (``ZL201720001285.X``, ``CN202110123456.7``, ``02145503.1``,
    ``201720001285X``); ``None`` if malformed: wrong length, impossible year or type, or a wrong check character."""
    text = _SPACES.sub("", number).upper()
    m = _APP.match(text)
    if m is None:
        return None
    digits, check = m.groups()
    if check is None and require_check:
        return None
    if check is not None and check != check_character(digits):
        return None
    if len(digits) == 12:
        year, type_digit = int(digits[:4]), digits[4]
        if not 2003 <= year <= 2099:
            return None
    else:
        yy, type_digit = int(digits[:2]), digits[2]
        year = 1900 + yy if yy >= 85 else 2000 + yy
        if not (1985 <= year <= 2003):
            return None
    if type_digit not in _APP_TYPE_DIGIT:
        return None
    normal = f"CN{digits}" + (f".{check}" if check is not None else "")
    return Application(normal, year, _APP_TYPE_DIGIT[type_digit], type_digit in "89", check is not None)


def find_applications(text: str) -> list[tuple[Application, int, int]]:
    """Application/patent numbers named in free text, each with its span, in order of appearance, once each.

    A number is taken when a prefix says what it is (``ZL``, ``CN``, 专利号, 申请号 …) or when it is written with
    a check character that agrees; a bare 8- or 12-digit run (a phone number, a date) is not read."""
    found: list[tuple[Application, int, int]] = []
    seen: set[str] = set()
    for m in _TEXT_APP.finditer(text):
        digits, check, prefix = m.group("digits"), m.group("check"), m.group("prefix")
        if not prefix and check is None:
            continue
        candidate = digits + (f".{check.upper()}" if check else "")
        app = parse_application(candidate)
        if app is None or app.number in seen:
            continue
        seen.add(app.number)
        found.append((app, m.start(), m.end()))
    return found


def find_publications(text: str) -> list[Publication]:
    """CNIPA publication numbers (9 digits + kind code, from 2010) named in free text, once each."""
    out: list[Publication] = []
    for m in _TEXT_PUB.finditer(text):
        pub = parse_publication(m.group())
        if pub is not None and pub not in out:
            out.append(pub)
    return out
