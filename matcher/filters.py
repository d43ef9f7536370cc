"""The filters a search or a match takes: ``PatentFilters`` and ``DemandFilters``, validated request models (bounded
lists and texts, IPC/CPC prefixes normalised). They are evaluated as masks over an index by
``matcher.facet_index.FacetIndex``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator

from matcher.records import ApplicantType, Language, LegalStatus, PatentType, normalize_code

_CODE_PREFIX = re.compile(r"^[A-H](\d{1,2}([A-Z](\d{1,4}(/\d{0,6})?)?)?)?$")

MAX_FILTER_VALUES = 100  # values of one list filter: each costs a pass over a vocabulary (100,000 took 4.8 s)
MAX_FILTER_TEXT = 200
_IPC_PREFIX_SCHEMA = r"^ *[A-Ha-h]( *[0-9]{1,2}( *[A-Za-z]( *[0-9]{1,4}( */ *[0-9]{0,6})?)?)?)? *$"
FilterText = Annotated[str, StringConstraints(max_length=MAX_FILTER_TEXT)]
IpcPrefix = Annotated[str, StringConstraints(max_length=40), WithJsonSchema(
    {"type": "string", "maxLength": 40, "pattern": _IPC_PREFIX_SCHEMA,
     "description": "An IPC/CPC code or prefix: H01M, G06F 9/48 (full-width forms are read too)."})]


class PatentFilters(BaseModel):
    """Which patents may be returned. Empty lists and None mean "no restriction" (except legal status)."""

    model_config = ConfigDict(extra="forbid")

    ipc: list[IpcPrefix] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                 description="IPC/CPC prefixes; a patent passes if any code starts with any of them "
                                             "(H01M, G06F9/48).")
    applicant_type: list[ApplicantType] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES)
    applicant: FilterText | None = Field(default=None, description="Part of an applicant's name, e.g. 浙江大学.")
    legal_status: list[LegalStatus | Literal["unknown"]] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Default: valid, or unknown where the source has no "
                                                                "status.")
    open_licence_only: bool = False
    date_from: date | None = Field(default=None, description="Application date (else publication date) on/after.")
    date_to: date | None = None
    maturity: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    kind: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                   description="发明专利, 非专利技术, US utility patent B2 ...")
    language: list[Language] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    patent_type: list[PatentType] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="From the patent's numbers (derived).")
    granted_only: bool = Field(default=False, description="Only patents whose number is a grant's. Granted is not "
                                                          "valid: a granted patent may have lapsed since.")
    include_inferred: bool = Field(default=True, description="Count values patent-match inferred (an applicant type "
                                                             "from a name, a holder read from an offer's text); "
                                                             "false: only values the source states.")

    @field_validator("ipc")
    @classmethod
    def _check_prefixes(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            code = normalize_code(value)
            if not _CODE_PREFIX.match(code):
                raise ValueError(f"not an IPC/CPC code or prefix: {value!r} (e.g. H01M, G06F, H01M4/58)")
            out.append(code)
        return out


class DemandFilters(BaseModel):
    """Which demands may be returned."""

    model_config = ConfigDict(extra="forbid")

    industry: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                       description="Part of the industry name, e.g. 制造业.")
    region: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                     description="Part of the region name, e.g. 浙江.")
    cooperation_modes: list[FilterText] = Field(default_factory=list, max_length=MAX_FILTER_VALUES,
                                                description="Any of these modes, e.g. 技术许可.")
    language: list[Language] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    active_on: date | None = Field(default=None, description="Only demands not expired on this date.")

