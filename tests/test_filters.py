"""Filters as masks: every patent and demand filter, the legal-status default, and persistence."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from matcher.facet_index import DEMAND_FACET_SPEC, PATENT_FACET_SPEC, FacetIndex
from matcher.filters import DemandFilters, PatentFilters
from matcher.records import Demand, Patent

# Real titles; the applicant type, legal status, licence and date fields are ADDED here to exercise the
# filters: the bundled sources do not have them (see data/NOTICE.md).
PATENTS = [
    Patent(id="P0", title="一种锂离子电池正极材料", ipc=["H01M4/58", "H01M10/0525"], applicants=["浙江大学"],
           applicant_type="university", legal_status="valid", open_licence=True, application_date=date(2020, 5, 1),
           maturity="通过小试", kind="发明专利"),
    Patent(id="P1", title="Graphics processor thread scheduling", ipc=["G06F9/48"],
           applicants=["NVIDIA CORPORATION"], applicant_type="company", publication_date=date(2018, 6, 19),
           language="en", kind="US utility patent B2"),
    Patent(id="P2", title="石墨烯散热膜", ipc=["C01B32/184"], legal_status="invalid", applicant_type="institute",
           applicants=["中国科学院宁波材料技术与工程研究所"], application_date=date(2019, 1, 1)),
    Patent(id="P3", title="一种衣物处理装置的预约控制方法", legal_status="pending", maturity="已有样品"),
]
DEMANDS = [
    Demand(id="D0", title="防起球的工艺改进", industry="制造业", region="浙江省",
           cooperation_modes=["技术转让", "技术许可"],
           expiry_date=date(2021, 1, 13)),
    Demand(id="D1", title="LED手电筒红外开关改进", industry="制造业", cooperation_modes=["委托开发"]),
    Demand(id="D2", title="智慧农业", industry="农、林、牧、渔业", region="江苏省", language="zh"),
]


@pytest.fixture(scope="module")
def facets() -> FacetIndex:
    return FacetIndex.build(PATENT_FACET_SPEC, PATENTS)


def ids(mask: np.ndarray, records: list) -> list[str]:
    return [r.id for r, keep in zip(records, mask, strict=True) if keep]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"]), ["P0", "P1", "P2", "P3"]),
        (PatentFilters(), ["P0", "P1"]),  # default: valid, or unknown
        (PatentFilters(legal_status=["invalid"]), ["P2"]),
        (PatentFilters(legal_status=["unknown"]), ["P1"]),
        (PatentFilters(ipc=["H01M"]), ["P0"]),
        (PatentFilters(ipc=["h01m 10/05"]), ["P0"]),
        (PatentFilters(ipc=["G06F", "C01B"], legal_status=["valid", "invalid", "unknown"]), ["P1", "P2"]),
        (PatentFilters(ipc=["G"]), ["P1"]),
        (PatentFilters(applicant_type=["university", "company"]), ["P0", "P1"]),
        (PatentFilters(applicant="浙江"), ["P0"]),
        (PatentFilters(applicant="nvidia"), ["P1"]),
        (PatentFilters(open_licence_only=True), ["P0"]),
        (PatentFilters(date_from=date(2019, 1, 1), legal_status=["valid", "invalid", "unknown"]), ["P0", "P2"]),
        (PatentFilters(date_to=date(2019, 1, 1), legal_status=["valid", "invalid", "unknown"]), ["P1", "P2"]),
        (PatentFilters(maturity=["已有样品"], legal_status=["pending"]), ["P3"]),
        (PatentFilters(kind=["发明专利"]), ["P0"]),
        (PatentFilters(language=["en"]), ["P1"]),
        (PatentFilters(ipc=["H01M"], applicant_type=["company"]), []),
    ],
)
def test_patent_filters(facets: FacetIndex, filters: PatentFilters, expected: list[str]) -> None:
    assert ids(facets.patent_mask(filters), PATENTS) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (DemandFilters(), ["D0", "D1", "D2"]),
        (DemandFilters(industry=["制造"]), ["D0", "D1"]),
        (DemandFilters(region=["浙江"]), ["D0"]),
        (DemandFilters(cooperation_modes=["技术许可"]), ["D0"]),
        (DemandFilters(cooperation_modes=["委托开发", "技术转让"]), ["D0", "D1"]),
        (DemandFilters(active_on=date(2022, 1, 1)), ["D1", "D2"]),  # D0 expired; no expiry = open
        (DemandFilters(language=["en"]), []),
    ],
)
def test_demand_filters(filters: DemandFilters, expected: list[str]) -> None:
    assert ids(FacetIndex.build(DEMAND_FACET_SPEC, DEMANDS).demand_mask(filters), DEMANDS) == expected


def test_invalid_filters_name_the_field() -> None:
    with pytest.raises(ValidationError, match="ipc"):
        PatentFilters(ipc=["XYZ"])
    with pytest.raises(ValidationError, match="applicant_type"):
        PatentFilters(applicant_type=["alien"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="colour"):
        PatentFilters(colour="red")  # type: ignore[call-arg]


def test_counts_and_round_trip(facets: FacetIndex, tmp_path: Path) -> None:
    assert facets.counts("applicant_type") == [("company", 1), ("institute", 1), ("university", 1)]
    assert facets.counts("ipc")[0][1] == 1 and len(facets.counts("ipc")) == 4
    facets.save(tmp_path / "f")
    loaded = FacetIndex.load(tmp_path / "f")
    for f in (PatentFilters(), PatentFilters(ipc=["H01M"]),
              PatentFilters(applicant="大学", date_from=date(2020, 1, 1))):
        assert np.array_equal(loaded.patent_mask(f), facets.patent_mask(f))
