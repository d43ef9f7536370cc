"""What a patent record implies beyond its columns, filled in at ingest and marked as such.

``derive(patent)`` reads the record's own id and text and fills only fields the source left empty:

- from a publication number id (``CN114058170A``, ``US10001996B2``; ``matcher.numbers``): ``kind`` (CNIPA),
  ``granted`` and ``patent_type``. Rule ``cnipa-kind-code`` / ``uspto-kind-code``;
- from an application number id (``ZL201720001285.X``) or numbers the record lists: ``application_numbers``,
  ``filing_year``, ``patent_type``. Rule ``cnipa-application-number``;
- for a record with no number in its id (a technology offer), from its title and text: the application numbers it
  names (rule ``application-number-in-text``; filing year and type only when every named number agrees), and
  the holder it names (``matcher.holders``; rule ``holder-in-text:<rule>``) as applicant;
- the applicant type from the first applicant's name (``matcher.applicants``; rule ``applicant-name:<rule id>``).

Every value filled in is listed in ``derived`` (field -> rule); the guesses (a holder read from prose, a type
from a name) are also listed in ``inferred``, so a filter can leave them out. Values derived earlier are dropped
and derived again, so ``derive`` is idempotent and a changed rule file takes effect on re-ingest.
"""

from __future__ import annotations

from typing import Any

from matcher.applicants import RuleSet, infer_type
from matcher.holders import holder_in_text
from matcher.numbers import Application, find_applications, parse_application, parse_publication
from matcher.records import Patent

_EMPTY: dict[str, Any] = {"application_numbers": [], "applicants": []}


def derive(patent: Patent, rules: RuleSet | None = None) -> Patent:
    """``patent`` with what its id, numbers and names imply filled in and marked (see the module docstring)."""
    data = patent.model_dump()
    for field in patent.derived:  # start again from what the source gave
        data[field] = _EMPTY.get(field)
    derived: dict[str, str] = {}
    inferred: list[str] = []

    def put(field: str, value: Any, rule: str, guess: bool = False) -> None:
        if value is None or data[field] not in (None, []):
            return
        data[field] = value
        derived[field] = rule
        if guess:
            inferred.append(field)

    pub = parse_publication(patent.id)
    if pub is not None:
        rule = "cnipa-kind-code" if pub.office == "CN" else "uspto-kind-code"
        put("kind", pub.kind, rule)
        put("granted", pub.granted, rule)
        put("patent_type", pub.patent_type, rule)
    else:
        apps: list[Application] = []
        own = parse_application(patent.id)
        if own is not None:
            apps = [own]
            put("application_numbers", [own.number], "cnipa-application-number")
        elif data["application_numbers"]:
            apps = [a for a in (parse_application(n) for n in data["application_numbers"]) if a is not None]
        else:
            named = [a for a, _, _ in find_applications(f"{patent.title}\n{patent.abstract}")]
            if named:
                apps = named
                put("application_numbers", [a.number for a in named], "application-number-in-text")
        rule = derived.get("application_numbers", "cnipa-application-number")
        if apps and len({a.filing_year for a in apps}) == 1:
            put("filing_year", apps[0].filing_year, rule)
        if apps and len({a.patent_type for a in apps}) == 1:
            put("patent_type", apps[0].patent_type, rule)
        if not data["applicants"]:
            holder = holder_in_text(patent.abstract)
            if holder is not None:
                put("applicants", [holder[0]], f"holder-in-text:{holder[1]}", guess=True)

    if data["applicant_type"] is None and data["applicants"]:
        found = infer_type(data["applicants"][0], rules)
        if found is not None:
            put("applicant_type", found[0], f"applicant-name:{found[1]}", guess=True)

    data["derived"] = derived
    data["inferred"] = inferred
    return Patent.model_validate(data)
