"""The two record types patent-match stores: a stock ``Patent`` (or technology offer) and an SME ``Demand``.

Both are pydantic models, so a record read from any file or request is validated the same way, and
errors name the field. Dates are ISO ``YYYY-MM-DD``; lists are lists (CSV/XLSX cells are split by the
ingest module before they reach here). Field size limits keep one bad row from bloating the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from matcher.ipc import is_valid_code, normalize_code
from matcher.reasons import refusal

MAX_ID = 128
MAX_TITLE = 1_000
MAX_TEXT = 200_000  # claims of a long patent fit; a 5 MB cell does not
MAX_SHORT = 2_000
MAX_LIST = 200

ApplicantType = Literal["university", "institute", "company", "individual"]
LegalStatus = Literal["valid", "pending", "invalid"]
Language = Literal["zh", "en"]
PatentType = Literal["invention", "utility_model", "design"]
DERIVABLE = ("kind", "granted", "patent_type", "filing_year", "application_numbers", "applicants", "applicant_type")

__all__ = ["DEMAND_FIELDS", "FIELDS", "PATENT_FIELDS", "Demand", "FieldUse", "Patent", "Record", "is_valid_code",
           "normalize_code"]  # IPC codes live in matcher.ipc

# Characters that make lookalike ids and invisible titles: C0/C1 controls (NUL, ESC, DEL ...) and invisible format
# characters (zero-width space/joiners, soft hyphen, BOM, bidi overrides). An id holding one is refused (it would
# be a second id that prints like the first). In text, ingest normalises them with ``without_invisible`` and
# reports each field it changed (``matcher.ingest``): a control character becomes a space (``Al-Zn\x02Mg`` ->
# ``Al-Zn Mg``), a format character is dropped; tabs and line breaks stay.
INVISIBLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
    r"\ufff9-\ufffb]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_FORMAT = re.compile(r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def without_invisible(value: object) -> object:
    """``value`` with control characters as spaces and invisible format characters dropped (see ``INVISIBLE``)."""
    if not isinstance(value, str) or not INVISIBLE.search(value):
        return value
    return _FORMAT.sub("", _CONTROL.sub(" ", value))


# What an id may not hold, as one character class every regex dialect reads alike (Python, Rust, ECMA-262): white
# space of any kind (spelled out: Python's and ECMA's \s differ), the path separators / and \, and INVISIBLE.
_ID_FORBIDDEN = (r"\x00-\x20\x7f-\x9f\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000"
                 r"\ufeff\ufff9-\ufffb/\\")
ID_PATTERN = rf"^[^{_ID_FORBIDDEN}]*[^{_ID_FORBIDDEN}.][^{_ID_FORBIDDEN}]*$"  # and not only dots ('.', '..')
_ID_BAD_CHAR = re.compile(rf"[{_ID_FORBIDDEN}]")


def _usable_id(value: str) -> str:
    found = _ID_BAD_CHAR.search(value)
    if found and INVISIBLE.match(found.group(0)):
        raise refusal("id_invisible", code=f"U+{ord(found.group(0)):04X}", position=found.start() + 1)
    if found:
        raise refusal("id_separator", char=repr(found.group(0)), position=found.start() + 1)
    if set(value) == {"."}:
        raise refusal("id_path_step", value=repr(value))
    return value


RecordId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID), AfterValidator(_usable_id),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_ID, "pattern": ID_PATTERN}),
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SHORT)]



class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unknown(cls, value: object, info: ValidationInfo) -> object:
        # A blank CSV/XLSX cell or a JSON null means "unknown": the field's default ("" or []), else None.
        if value is None or (isinstance(value, str) and not value.strip()):
            field = cls.model_fields[info.field_name or ""]
            if field.default_factory is not None:
                return field.default_factory()  # type: ignore[call-arg]
            return field.default if isinstance(field.default, str) else None
        return value


class Patent(_Record):
    """A stock patent or technology offer (a Zhibei offer may be a non-patent technology: see ``kind``)."""

    id: RecordId = Field(description="Publication number where one exists (CN113914863A, US10001996B2), "
                                     "else a source id.")
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TITLE)] = Field(
        default="", description="May be empty only when there is an abstract (some sources publish abstracts alone)."
    )
    abstract: Text = ""
    claims: Text = ""
    ipc: list[str] = Field(default_factory=list, max_length=MAX_LIST,
                           description="IPC/CPC codes, main code first.")
    applicants: list[Short] = Field(default_factory=list, max_length=MAX_LIST)
    applicant_type: ApplicantType | None = None
    legal_status: LegalStatus | None = None
    application_date: date | None = None
    publication_date: date | None = None
    open_licence: bool | None = None
    price: Short | None = Field(default=None, description="Price or royalty terms as published (e.g. 面议).")
    licence_term: Short | None = Field(default=None, description="Term of the declared open licence as published "
                                                                 "(许可期限, e.g. 2025-01-01至2027-12-31).")
    maturity: Short | None = None
    cooperation_modes: list[Short] = Field(default_factory=list, max_length=MAX_LIST)
    kind: Short | None = Field(default=None, description="The patent's kind as the source labels it: 发明专利 / "
                                                          "实用新型专利 / 非专利技术 / utility ... (patent_type is "
                                                          "patent-match's normalised reading of the numbers).")
    industry: Short | None = Field(default=None,
                                   description="National industry classification (国民经济行业), as demands use.")
    tech_area: Short | None = Field(default=None, description="Technical area as published, e.g. 新材料-复合材料.")
    keywords: list[Short] = Field(default_factory=list, max_length=MAX_LIST,
                                  description="Human keyphrases; stored, not indexed.")
    language: Language = "zh"
    source: Short | None = Field(default=None,
                                 description="Where the record came from, e.g. kppatent_zh/test_data_TAC.json#12")
    # What patent-match derived from the record itself (matcher/derive.py): never given by a source column.
    application_numbers: list[Short] = Field(default_factory=list, max_length=MAX_LIST,
                                             description="CNIPA application numbers named by the record, normalised "
                                                         "(CN201720001285.X).")
    patent_type: PatentType | None = Field(default=None, description="invention / utility_model / design.")
    granted: bool | None = Field(default=None, description="True: the publication number is a grant's. Granted is "
                                                           "not valid: the patent may have lapsed since.")
    filing_year: int | None = Field(default=None, ge=1985, le=2099, description="Year of the application (申请年).")
    derived: dict[str, Short] = Field(default_factory=dict, description="Field -> the rule patent-match derived its "
                                                                         "value by (the source did not give it).")
    inferred: list[str] = Field(default_factory=list, description="Derived fields whose value is a guess (an "
                                                                  "applicant type from a name), not a reading.")

    @field_validator("derived", "inferred")
    @classmethod
    def _check_derivable(cls, value: dict[str, str] | list[str]) -> dict[str, str] | list[str]:
        unknown = sorted(set(value) - set(DERIVABLE))  # a dict's keys, a list's items
        if unknown:
            raise refusal("not_derivable", unknown=", ".join(unknown), derivable=", ".join(DERIVABLE))
        return value

    @field_validator("ipc")
    @classmethod
    def _check_codes(cls, codes: list[str]) -> list[str]:
        out: list[str] = []
        for code in codes:
            norm = normalize_code(code)
            if not is_valid_code(norm):
                raise refusal("ipc_code", code=repr(code))
            if norm not in out:
                out.append(norm)
        return out

    @model_validator(mode="after")
    def _title_or_abstract(self) -> Patent:
        if not self.title and not self.abstract:
            raise refusal("title_or_abstract")
        return self


class Demand(_Record):
    """An enterprise technology demand (技术需求)."""

    id: RecordId
    title: Title
    description: Text = ""
    enterprise: Short | None = None
    industry: Short | None = None
    region: Short | None = None
    cooperation_modes: list[Short] = Field(default_factory=list, max_length=MAX_LIST)
    budget: Short | None = None
    posted_date: date | None = None
    expiry_date: date | None = None
    language: Language = "zh"
    source: Short | None = None


Record = Patent | Demand


# --- the record field table -----------------------------------------------------------------------------------
# One row per field of each record type: what its values are and where patent-match uses it. The store's columns,
# a snapshot's filter arrays, the facet menus, ingest's cell parsing and the record pages all read this table.
FieldType = Literal["id", "text", "category", "list", "date", "flag", "number", "rules"]


@dataclass(frozen=True)
class FieldUse:
    """How one record field is used. ``type``: ``text`` free text; ``category`` one value of a small vocabulary;
    ``list`` several values (a CSV/XLSX cell is split); ``date`` ISO; ``flag`` true/false/unknown; ``number`` an
    integer; ``rules`` field -> rule id (``derived``)."""

    type: FieldType
    column: bool = False  # copied into a store column (a list: into record_values) when the record is written
    filter: bool = False  # in a snapshot's FacetIndex: searches filter on it
    facet: bool = False  # counted for filter menus (/v1/facets, the page)
    source: bool = True  # may come from a source file; False: only patent-match derives it (matcher.derive)


_CAT = FieldUse("category", column=True, filter=True, facet=True)
_LIST = FieldUse("list", column=True, filter=True, facet=True)
_DATE = FieldUse("date", column=True, filter=True)
_TEXT = FieldUse("text")

PATENT_FIELDS: dict[str, FieldUse] = {
    "id": FieldUse("id"), "title": _TEXT, "abstract": _TEXT, "claims": _TEXT,
    "ipc": _LIST, "applicants": _LIST, "applicant_type": _CAT, "legal_status": _CAT,
    "application_date": _DATE, "publication_date": _DATE,
    "open_licence": FieldUse("flag", column=True, filter=True, facet=True),
    "price": _TEXT, "licence_term": _TEXT, "maturity": _CAT, "cooperation_modes": _LIST, "kind": _CAT,
    "industry": _CAT, "tech_area": _CAT,
    "keywords": FieldUse("list"), "language": _CAT, "source": _TEXT,
    "application_numbers": FieldUse("list", source=False),
    "patent_type": FieldUse("category", filter=True, source=False),
    "granted": FieldUse("flag", filter=True, source=False),
    "filing_year": FieldUse("number", filter=True, source=False),
    "derived": FieldUse("rules", source=False),
    "inferred": FieldUse("list", filter=True, source=False),
}
DEMAND_FIELDS: dict[str, FieldUse] = {
    "id": FieldUse("id"), "title": _TEXT, "description": _TEXT, "enterprise": _CAT, "industry": _CAT,
    "region": _CAT, "cooperation_modes": _LIST, "budget": _TEXT, "posted_date": _DATE, "expiry_date": _DATE,
    "language": _CAT, "source": _TEXT,
}
FIELDS: dict[str, dict[str, FieldUse]] = {"patents": PATENT_FIELDS, "demands": DEMAND_FIELDS}


def fields_where(collection: str, **wanted: object) -> tuple[str, ...]:
    """The fields of ``collection`` (patents, demands) whose uses match ``wanted``, in table order:
    ``fields_where("patents", filter=True)``, ``fields_where("demands", type="date")``."""
    return tuple(name for name, use in FIELDS[collection].items()
                 if all(getattr(use, key) == value for key, value in wanted.items()))

