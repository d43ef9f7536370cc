"""Patent numbers: every form the parsers read, and malformed ones, which give no value (never a wrong one)."""

from __future__ import annotations

import pytest

from matcher.numbers import check_character, find_applications, find_publications, parse_application, parse_publication


@pytest.mark.parametrize(
    ("number", "kind", "granted", "ptype"),
    [
        ("CN114058170A", "发明专利申请", None, "invention"),  # an application: a later grant is not known
        ("CN113914863A", "发明专利申请", None, "invention"),
        ("CN105874513B", "发明专利", True, "invention"),
        ("CN101234567C", "发明专利", True, "invention"),  # pre-2010 grant code
        ("CN215431234U", "实用新型专利", True, "utility_model"),
        ("CN2812345Y", "实用新型专利", True, "utility_model"),
        ("CN306123456S", "外观专利", True, "design"),
        ("CN3456789D", "外观专利", True, "design"),
        ("cn 114058170 a", "发明专利申请", None, "invention"),  # spacing and case do not matter
    ],
)
def test_cnipa_publication_numbers(number: str, kind: str, granted: bool | None, ptype: str) -> None:
    pub = parse_publication(number)
    assert pub is not None and pub.office == "CN"
    assert (pub.kind, pub.granted, pub.patent_type) == (kind, granted, ptype)


@pytest.mark.parametrize(
    ("number", "granted", "ptype"),
    [("US10001996B2", True, "invention"), ("US6844880B1", True, "invention"), ("US5123456A", True, "invention"),
     ("USD1078812S1", True, "design"), ("USRE39501E1", True, None), ("US20190012345A1", None, None)],
)
def test_uspto_publication_numbers(number: str, granted: bool | None, ptype: str | None) -> None:
    pub = parse_publication(number)
    assert pub is not None and (pub.granted, pub.patent_type) == (granted, ptype)


@pytest.mark.parametrize(
    "number",
    ["", "CN", "CN114058170", "CN114058170Q", "CN214058170A",  # type digit 2 (utility) with kind A (invention)
     "CN314058170U", "CN1234567B",  # a 7-digit B is a pre-1993 examined application, not a grant
     "CN114058170A7", "XX114058170A", "US10001996Z9", "US2019001234A1", "ZL201720001285.X", "KPZH-A-0001"],
)
def test_malformed_publication_numbers_give_nothing(number: str) -> None:
    assert parse_publication(number) is None


@pytest.mark.parametrize(
    ("number", "normal", "year", "ptype", "pct"),
    [
        ("ZL201720001285.X", "CN201720001285.X", 2017, "utility_model", False),
        ("CN202110123456.7", "CN202110123456.7", 2021, "invention", False),
        ("201410142425.6", "CN201410142425.6", 2014, "invention", False),
        ("ZL 2014 1 0142425.6", "CN201410142425.6", 2014, "invention", False),
        ("201720001285X", "CN201720001285.X", 2017, "utility_model", False),  # check character without the dot
        ("zl201720001285.x", "CN201720001285.X", 2017, "utility_model", False),
        ("201530123456.2", "CN201530123456.2", 2015, "design", False),
        ("201880012345.5", "CN201880012345.5", 2018, "invention", True),  # a PCT application entering China
        ("ZL02145503.1", "CN02145503.1", 2002, "invention", False),  # the 8-digit form (before October 2003)
        ("98123456.9", "CN98123456.9", 1998, "invention", False),
        ("ZL02228379.X", "CN02228379.X", 2002, "utility_model", False),
        ("CN202110123456", "CN202110123456", 2021, "invention", False),  # no check character: not verified
    ],
)
def test_application_numbers(number: str, normal: str, year: int, ptype: str, pct: bool) -> None:
    app = parse_application(number)
    assert app is not None
    assert (app.number, app.filing_year, app.patent_type, app.pct) == (normal, year, ptype, pct)


@pytest.mark.parametrize(
    "number",
    ["ZL201720001285.3",  # wrong check character
     "CN202110123456.8", "ZL02145503.2",
     "201750001285.6",  # right check character, but type digit 5 does not exist
     "189910123456.9",  # year 1899
     "84123456.6",  # 8-digit year 1984: before the Chinese patent law
     "05123456.4",  # 8-digit form after 2003
     "2017200012851.X", "2017200012.X", "ZL", "", "ZL20172000128A.X", "CN114058170A"],
)
def test_malformed_application_numbers_give_nothing(number: str) -> None:
    assert parse_application(number) is None


def test_check_character_matches_real_numbers() -> None:
    # numbers copied from real Zhibei offers (shared/data zhibei_market, part 1 rows 0, 11, 26, 249, 273)
    for number in ("201720001285.X", "201410142425.6", "201410227749.X", "201210166750.7", "201310198944.X"):
        digits, check = number.split(".")
        assert check_character(digits) == check


def test_numbers_in_offer_text() -> None:
    text = ("本产品根据泉州师范学院专利技术（ZL201720001285.X），利用光来“听”使用者的呼吸率。专利号：ZL201410227707.6"
            "ZL201410227749.X；联系电话13912345678，20180102，申请号：201510383840.5。品种权号20090065.9")
    found = [a.number for a, _, _ in find_applications(text)]
    assert found == ["CN201720001285.X", "CN201410227707.6", "CN201410227749.X", "CN201510383840.5"]
    assert find_applications("专利号：ZL201720001285.3")  == []  # a wrong check character is not read
    assert find_applications("电话 201720001285") == []  # a bare digit run without prefix or check is not read
    assert [p.number for p in find_publications("其选育方法申请发明专利获公告（CN103380725A）")] == ["CN103380725A"]
