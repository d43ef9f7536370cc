"""Empty and short filtered searches are explained: which filter emptied the list, what each keeps alone."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from matcher.derive import derive
from matcher.facet_index import PATENT_FACET_SPEC, FacetIndex
from matcher.filter_report import report
from matcher.filters import PatentFilters
from matcher.records import Patent

PATENTS = [derive(p) for p in (
    Patent(id="CN105874513B", title="一种锂电池正极材料", applicants=["华南理工大学"]),
    Patent(id="CN114058170A", title="一种超导材料", applicants=["中国科学院物理研究所"], applicant_type="institute"),
    Patent(id="ZB-O1-0000", title="智能坐垫", abstract="本产品根据泉州师范学院专利技术（ZL201720001285.X），利用光"),
    Patent(id="US10001996B2", title="GPU scheduling", applicants=["NVIDIA CORPORATION"], applicant_type="company",
           language="en", publication_date=date(2018, 6, 19)),
    Patent(id="KPZH-A-0001", abstract="一种衣物处理装置"),
)]


@pytest.fixture(scope="module")
def facets() -> FacetIndex:
    return FacetIndex.build(PATENT_FACET_SPEC, PATENTS)


def kept(facets: FacetIndex, **filters: object) -> list[str]:
    mask = facets.patent_mask(PatentFilters(**filters))  # type: ignore[arg-type]
    return [p.id for p, keep in zip(PATENTS, mask, strict=True) if keep]


def test_derived_values_filter(facets: FacetIndex) -> None:
    assert kept(facets, applicant_type=["university"]) == ["CN105874513B", "ZB-O1-0000"]
    assert kept(facets, applicant_type=["university"], include_inferred=False) == []
    assert kept(facets, applicant_type=["institute"], include_inferred=False) == ["CN114058170A"]  # stated
    assert kept(facets, applicant="泉州", include_inferred=False) == []  # the holder was read from the text
    assert kept(facets, granted_only=True) == ["CN105874513B", "US10001996B2"]
    assert kept(facets, patent_type=["utility_model"]) == ["ZB-O1-0000"]
    # a filing year counts for a date range only when the whole year lies inside it
    assert kept(facets, date_from=date(2017, 1, 1)) == ["ZB-O1-0000", "US10001996B2"]
    assert kept(facets, date_from=date(2017, 6, 1)) == ["US10001996B2"]
    assert kept(facets, date_to=date(2017, 12, 31)) == ["ZB-O1-0000"]


def test_which_filter_emptied_the_list(facets: FacetIndex) -> None:
    filters = PatentFilters(language=["en"], applicant_type=["university"])
    r = report(facets, filters, found=0, k=10)
    assert r.emptied_by == "language" and r.kept == 0 and r.total == 5  # each keeps some; together none
    by_name = {f.name: f for f in r.filters}
    assert (by_name["applicant_type"].keeps, by_name["applicant_type"].missing) == (2, 1)
    assert (by_name["language"].keeps, by_name["language"].missing) == (1, 0)
    assert by_name["legal_status"].default and by_name["legal_status"].keeps == 5
    assert r.lines("en")[0] == "No results: the filter language=en left no patents."
    assert "applicant_type=university: 2 of 5 patents have this value (1 have no applicant type)" in r.lines("en")
    assert r.lines("zh")[0] == "没有结果：筛选条件 language=en 排除了剩下的所有专利。"
    d = r.to_dict()
    assert d["emptied_by"] == "language" and d["filters"][0]["filter"] == "applicant_type"
    alone = report(facets, PatentFilters(language=["en"], patent_type=["design"]), found=0, k=10)
    assert alone.emptied_by == "patent_type"  # no record at all is a design: that filter says most


def test_short_but_not_empty(facets: FacetIndex) -> None:
    r = report(facets, PatentFilters(granted_only=True), found=2, k=10)
    assert r.emptied_by is None and r.kept == 2 and r.short
    assert r.lines("en")[0] == "The filters together keep only 2 of 5 patents."


def test_old_index_without_derived_fields_reads_them_as_missing(facets: FacetIndex) -> None:
    derived = ("granted", "patent_type", "filing_year", "inferred")
    spec = {f: k for f, k in PATENT_FACET_SPEC.items() if f not in derived}
    old = FacetIndex.build(spec, PATENTS)
    assert not old.patent_mask(PatentFilters(granted_only=True)).any()
    assert report(old, PatentFilters(patent_type=["design"]), 0, 5).filters[0].missing == 5


def test_on_the_bundled_sample(sample_patents: list[Patent]) -> None:
    facets = FacetIndex.build(PATENT_FACET_SPEC, sample_patents)
    universities = sum(1 for p in sample_patents if p.applicant_type == "university")
    untyped = sum(1 for p in sample_patents if p.applicant_type is None)
    r = report(facets, PatentFilters(applicant_type=["university"], legal_status=["valid"]), found=0, k=10)
    counts = {f.name: f for f in r.filters}
    assert counts["applicant_type"].keeps == universities > 0
    assert counts["applicant_type"].missing == untyped
    assert counts["legal_status"].keeps == 0 and r.emptied_by == "legal_status"  # no source gives "valid"
    assert f"applicant_type=university: {universities:,} of {len(sample_patents):,} patents have this value " \
           f"({untyped:,} have no applicant type)" in r.lines("en")
    assert np.array_equal(facets.patent_mask(PatentFilters()), np.ones(len(sample_patents), dtype=bool)
                          & facets.patent_masks(PatentFilters())[0].mask)
