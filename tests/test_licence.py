"""Open-licence request notices: rendered as DOCX, PDF and Markdown, read back, and checked for the declared terms;
a patent without an open-licence declaration (or without its terms) is refused in Chinese and English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from matcher.licence import Licensee, NotOpenLicence, build_notice, render
from matcher.records import Patent
from matcher.store import Store
from matcher.workspace import Workspace

DECLARED = Patent(
    id="CN112345678B", title="一种锂离子电池正极材料的制备方法", abstract="本发明公开了一种正极材料……",
    applicants=["宁波某某大学", "某某新能源科技有限公司"], open_licence=True,
    price="入门费5万元，另按销售额3%提成，按年支付", licence_term="2025年1月1日至2027年12月31日",
    application_numbers=["CN202010123456.7"], source="国家知识产权局专利开放许可声明公告 2025-01",
)
ENTERPRISE = Licensee("宁波甲乙机械有限公司", credit_code="91330200MA2AB1234X", address="浙江省宁波市鄞州区某路1号",
                      contact="张三", phone="0574-87654321", email="zhang@example.cn")


def docx_text(path: Path) -> str:
    import docx

    doc = docx.Document(str(path))
    parts = [p.text for p in doc.paragraphs]
    parts += [c.text for t in doc.tables for row in t.rows for c in row.cells]
    return "\n".join(parts)


def pdf_text(path: Path) -> str:
    import pypdf

    return "".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)


def squeeze(value: str) -> str:
    return re.sub(r"[\s\x00]+", "", value)  # PDF text extraction spaces (or NUL-pads) CJK glyphs apart


@pytest.mark.parametrize("suffix", [".docx", ".pdf", ".md"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_rendered_notice_holds_the_declared_terms(tmp_path: Path, suffix: str, lang: str) -> None:
    path = render(build_notice(DECLARED, ENTERPRISE, lang), tmp_path / f"notice{suffix}")  # type: ignore[arg-type]
    read = {".docx": docx_text, ".pdf": pdf_text, ".md": lambda p: p.read_text("utf-8")}[suffix](path)
    got = squeeze(read)
    for value in (DECLARED.id, DECLARED.title, DECLARED.price, DECLARED.licence_term, "宁波某某大学",
                  "CN202010123456.7", ENTERPRISE.name, ENTERPRISE.credit_code, ENTERPRISE.address, ENTERPRISE.phone):
        assert squeeze(str(value)) in got, (suffix, value)
    heading = "专利开放许可实施通知书" if lang == "zh" else "NoticeofTakinganOpenLicence"
    assert heading in got
    assert ("第五十一条" in got) == (lang == "zh")
    if suffix == ".pdf":
        assert b"/FontFile3" in path.read_bytes() or b"/FontFile2" in path.read_bytes()  # the CJK font is embedded


def test_a_patent_without_an_open_licence_declaration_is_refused() -> None:
    with pytest.raises(NotOpenLicence) as no_flag:
        build_notice(DECLARED.model_copy(update={"open_licence": None}), ENTERPRISE)
    assert "没有开放许可声明" in no_flag.value.message("zh")
    assert "no open licence declaration" in no_flag.value.message("en")
    with pytest.raises(NotOpenLicence) as no_term:
        build_notice(DECLARED.model_copy(update={"licence_term": None}), ENTERPRISE)
    assert "许可期限" in no_term.value.message("zh") and "term" in no_term.value.message("en")


def test_cli_licence_request(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home")
    plain = Patent(id="CN100000001A", title="一种普通专利", abstract="没有开放许可。")
    with Store(ws.store_path) as store:
        store.write_batch("patents", [DECLARED, plain], "patents.jsonl")
    out = tmp_path / "通知书.docx"
    runner = CliRunner()
    env = {"PMATCH_HOME": str(ws.home), "COLUMNS": "200"}
    ok = runner.invoke(app, ["licence-request", DECLARED.id, "--enterprise", ENTERPRISE.name, "--out", str(out),
                             "--credit-code", "91330200MA2AB1234X"], env=env)
    assert ok.exit_code == 0, ok.output
    assert DECLARED.price and DECLARED.price in docx_text(out) and "91330200MA2AB1234X" in docx_text(out)
    refused = runner.invoke(app, ["licence-request", plain.id, "--enterprise", "甲公司", "--out",
                                  str(tmp_path / "x.pdf"), "--lang", "en"], env=env)
    assert refused.exit_code == 1 and "no open licence declaration" in refused.output
    assert not (tmp_path / "x.pdf").exists()
    bad = runner.invoke(app, ["licence-request", DECLARED.id, "--enterprise", "甲公司", "--out",
                              str(tmp_path / "x.txt")], env=env)
    assert bad.exit_code == 2 and "不支持的格式" in bad.output
