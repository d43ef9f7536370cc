"""What records imply, derived at ingest and in the bundled sample by the same code, and marked as derived."""

from __future__ import annotations

import csv
from pathlib import Path

from matcher.derive import derive
from matcher.ingest import read_file
from matcher.records import Patent


def test_publication_number_ids() -> None:
    p = derive(Patent(id="CN105874513B", title="一种锂电池"))
    assert (p.kind, p.granted, p.patent_type) == ("发明专利", True, "invention")
    assert p.derived == {"kind": "cnipa-kind-code", "granted": "cnipa-kind-code", "patent_type": "cnipa-kind-code"}
    assert p.inferred == []
    a = derive(Patent(id="CN114058170A", title="x"))
    assert a.granted is None and a.kind == "发明专利申请"  # an application: a later grant is unknown, not "no"
    us = derive(Patent(id="US10001996B2", title="x", kind="US utility patent B2"))
    assert us.granted is True and us.kind == "US utility patent B2" and "kind" not in us.derived


def test_application_number_id_and_source_values_win() -> None:
    p = derive(Patent(id="ZL201720001285.X", title="坐姿监测"))
    assert (p.application_numbers, p.filing_year, p.patent_type) == (["CN201720001285.X"], 2017, "utility_model")
    assert p.derived["filing_year"] == "cnipa-application-number"
    given = derive(Patent(id="CN215431234U", title="x", kind="实用新型", granted=False))
    assert given.kind == "实用新型" and given.granted is False and set(given.derived) == {"patent_type"}
    bad = derive(Patent(id="ZL201720001285.3", title="x"))  # wrong check character: nothing derived
    assert bad.derived == {} and bad.filing_year is None


def test_offer_text_names_its_patent_and_holder() -> None:
    # the real Zhibei offer (technical_achievements_data_source_part_1.json#0), text cut
    text = ("现代很多工作需要人们长期坐在电脑前工作。本产品根据泉州师范学院专利技术（ZL201720001285.X），利用光来"
            "“听”使用者的呼吸率和心率。")
    p = derive(Patent(id="ZB-O1-0000", title="智能坐垫", abstract=text, kind="实用新型专利"))
    assert p.application_numbers == ["CN201720001285.X"] and p.filing_year == 2017
    assert p.patent_type == "utility_model" and p.kind == "实用新型专利"
    assert p.applicants == ["泉州师范学院"] and p.applicant_type == "university"
    assert p.derived["applicants"] == "holder-in-text:patent-holder"
    assert p.derived["applicant_type"] == "applicant-name:zh-university"
    assert p.inferred == ["applicants", "applicant_type"]
    two_years = derive(Patent(id="ZB-1", title="x", abstract="专利号：ZL201410227707.6、ZL02228379.X"))
    assert len(two_years.application_numbers) == 2 and two_years.filing_year is None  # they disagree: no year


def test_derive_is_idempotent_and_re_derives(sample_patents: list[Patent]) -> None:
    for p in sample_patents[::7]:
        assert derive(p) == p, p.id
    p = derive(Patent(id="X1", title="x", applicants=["华南理工大学"]))
    stale = p.model_copy(update={"applicant_type": "company"})  # a value derived by an older rule
    assert derive(stale).applicant_type == "university"


def test_ingest_infers_applicant_types_from_cnipa_style_rows(tmp_path: Path) -> None:
    rows = [{"申请号": "CN202110123456.7", "名称": "一种锂电池正极材料", "申请人": "华南理工大学"},
            {"申请号": "CN114058170A", "名称": "一种超导材料", "申请人": "中国科学院物理研究所"},
            {"申请号": "CN215431234U", "名称": "一种夹具", "申请人": "张伟"},
            {"申请号": "CN105874513B", "名称": "一种电池", "申请人": "宁德时代新能源科技股份有限公司",
             "申请人类型": "企业"}]
    path = tmp_path / "cnipa.csv"  # a CNIPA-style export: Chinese headers, no 申请人类型 in most rows
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["申请号", "名称", "申请人", "申请人类型"])
        writer.writeheader()
        writer.writerows(rows)
    parsed = read_file(path, "patents")
    assert not parsed.errors
    got = {r.id: r for r in parsed.records}
    assert [got[i].applicant_type for i in ("CN202110123456.7", "CN114058170A", "CN215431234U", "CN105874513B")] == [
        "university", "institute", "individual", "company"]
    assert got["CN202110123456.7"].filing_year == 2021 and got["CN202110123456.7"].inferred == ["applicant_type"]
    assert "applicant_type" not in got["CN105874513B"].derived  # the source said so: not inferred


def test_sample_carries_derived_values_with_a_basis_in_the_text(sample_patents: list[Patent]) -> None:
    universities = [p for p in sample_patents if p.applicant_type == "university"]
    institutes = [p for p in sample_patents if p.applicant_type == "institute"]
    assert universities and institutes
    for p in universities + institutes:
        assert "applicant_type" in p.inferred and p.applicants[0] in p.abstract  # the holder is named in the text
    offers = [p for p in sample_patents if p.derived.get("application_numbers") == "application-number-in-text"]
    assert len(offers) >= 50
    for p in offers:
        digits = [n.removeprefix("CN").split(".")[0] for n in p.application_numbers]
        assert all(d in p.abstract.replace(" ", "") or d in p.title for d in digits), p.id
