"""Chain definitions: the shipped examples load, and every kind of bad file gets a clear error naming the file and
the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.chains import Chain, ChainError, key_path, load_chain, parse_chain, shipped_chains

GOOD_SEGMENT = """
  - id: battery
    name: 上游·电池
    ipc: [H01M]
    keywords: {zh: [锂电池], en: [lithium battery]}
"""


def write(tmp_path: Path, text: str, name: str = "chain.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_both_shipped_chains_load() -> None:
    paths = shipped_chains()
    names = {p.name for p in paths}
    assert {"new_energy_vehicle.yaml", "smart_manufacturing.yaml"} <= names
    for path in paths:
        chain = load_chain(path)
        assert isinstance(chain, Chain) and chain.name and chain.name_en and chain.source == path.name
        assert len(chain.segments) >= 3
        for seg in chain.segments:
            assert seg.name and seg.name_en and (seg.ipc or seg.keywords.all())
            assert seg.keywords.zh and seg.keywords.en, f"{path.name}: {seg.id} should be bilingual"


def test_shipped_chains_are_documented() -> None:
    readme = (shipped_chains()[0].parent / "README.md").read_text("utf-8")
    for key in ("segments", "ipc", "keywords", "seeds", "patent_filters", "demand_filters", "expand_patents",
                "expand_demands", "name_en"):
        assert f"`{key}`" in readme, key


def test_segment_filters_override_the_chains_field_by_field(tmp_path: Path) -> None:
    chain = load_chain(write(tmp_path, """
name: 测试链
patent_filters: {open_licence_only: true, language: [zh]}
demand_filters: {industry: [制造业]}
segments:
  - id: a
    name: A
    ipc: [h01m 4/58]
    patent_filters: {language: [en]}
  - id: b
    name: B
    keywords: {zh: [电池]}
    demand_filters: {industry: [农]}
"""))
    a, b = chain.segments
    assert a.ipc == ["H01M4/58"]  # normalised like every IPC code
    fa = chain.segment_patent_filters(a)
    assert fa.language == ["en"] and fa.open_licence_only  # overridden field, inherited field
    assert chain.segment_patent_filters(b).language == ["zh"]
    assert chain.segment_demand_filters(a).industry == ["制造业"]
    assert chain.segment_demand_filters(b).industry == ["农"]


BAD = [
    ("name: x\nsegments:\n" + GOOD_SEGMENT + "  - id: b\n    name: B\n    ipc: [H01M, X99]\n",
     "chain.yaml: segments[1].ipc[1]: not an IPC/CPC code or prefix: 'X99'"),
    ("name: x\nsegments: []\n", "chain.yaml: segments: must not be empty"),
    ("name: x\n", "chain.yaml: segments: missing (required)"),
    ("segments:\n" + GOOD_SEGMENT, "chain.yaml: name: missing (required)"),
    ("name: x\nsegmnets: []\nsegments:\n" + GOOD_SEGMENT, "chain.yaml: segmnets: unknown key (allowed: name, name_en,"),
    ("name: x\nsegments:\n" + GOOD_SEGMENT + "    seed: [CN1]\n",
     "chain.yaml: segments[0].seed: unknown key (allowed: id, name, name_en, description, ipc, keywords, seeds"),
    ("name: x\nsegments:\n  - id: a\n    name: A\n    keywords: {zh: 电池}\n",
     "chain.yaml: segments[0].keywords.zh: Input should be a valid list (got str: '电池')"),
    ("name: x\nsegments:\n  - id: a\n    name: A\n    keywords: {de: [Batterie]}\n",
     "chain.yaml: segments[0].keywords.de: unknown key (allowed: zh, en)"),
    ("name: 42\nsegments:\n" + GOOD_SEGMENT, "chain.yaml: name: Input should be a valid string (got int: 42)"),
    ("name: x\nsegments:\n" + GOOD_SEGMENT + "    expand_patents: many\n",
     "chain.yaml: segments[0].expand_patents: Input should be a valid integer"),
    ("name: x\nsegments:\n" + GOOD_SEGMENT + "    expand_demands: -1\n",
     "chain.yaml: segments[0].expand_demands: Input should be greater than or equal to 0"),
    ("name: x\nsegments:\n  - id: a\n    name: A\n    keywords: {zh: []}\n",
     "chain.yaml: segments[0]: a segment needs at least one of ipc, keywords (zh/en) or seeds"),
    ("name: x\nsegments:\n" + GOOD_SEGMENT + GOOD_SEGMENT,
     "chain.yaml: segments: segments[1] has the same id as segments[0]: 'battery'"),
    ("name: x\nsegments:\n  - id: Battery Cells\n    name: A\n    ipc: [H01M]\n",
     "chain.yaml: segments[0].id: must be lower-case ASCII letters, digits, _ or -"),
    ("name: x\nsegments:\n  - name: A\n    ipc: [H01M]\n", "chain.yaml: segments[0].id: missing (required)"),
    ("name: x\nsegments:\n" + GOOD_SEGMENT + "    patent_filters: {language: [fr]}\n",
     "chain.yaml: segments[0].patent_filters.language[0]: Input should be 'zh' or 'en' (got str: 'fr')"),
    ("name: x\ndemand_filters: {industy: [制造业]}\nsegments:\n" + GOOD_SEGMENT,
     "chain.yaml: demand_filters.industy: unknown key (allowed: industry, region, cooperation_modes"),
    ("name: x\npatent_filters: {ipc: [Z1]}\nsegments:\n" + GOOD_SEGMENT,
     "chain.yaml: patent_filters.ipc: not an IPC/CPC code or prefix: 'Z1'"),
    ("name: x\nsegments: [\n", "chain.yaml: line 3, column 1: expected the node content"),
    ("name: x\nname: y\nsegments:\n" + GOOD_SEGMENT, "chain.yaml: line 2, column 1: key 'name' appears twice"),
    ("- name: x\n", "chain.yaml: the file must hold a mapping with name and segments, not list"),
    ("", "chain.yaml: the file must hold a mapping with name and segments, not NoneType"),
    ("name: x\nsegments: battery\n", "chain.yaml: segments: Input should be a valid list (got str: 'battery')"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(": ", 1)[1][:40] for _, m in BAD])
def test_bad_chain_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ChainError) as info:
        load_chain(write(tmp_path, text))
    assert message in str(info.value)
    assert "Traceback" not in str(info.value) and "pydantic" not in str(info.value)


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = "name: x\nsegments:\n  - id: a\n    name: A\n    ipc: [X1, H01M, Y2]\n    colour: red\n"
    with pytest.raises(ChainError) as info:
        load_chain(write(tmp_path, text))
    lines = str(info.value).splitlines()
    assert any("segments[0].ipc[0]" in line for line in lines)
    assert any("segments[0].ipc[2]" in line for line in lines)
    assert any("segments[0].colour: unknown key" in line for line in lines)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ChainError, match="no such file"):
        load_chain(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ChainError, match=r"latin1\.yaml: not UTF-8"):
        load_chain(path)


def test_parse_chain_and_key_path() -> None:
    assert key_path(("segments", 1, "ipc", 0)) == "segments[1].ipc[0]"
    assert key_path(()) == ""  # the top level: format_errors says (top level) in the reader's language
    chain = parse_chain({"name": "x", "segments": [{"id": "s", "name": "S", "seeds": ["CN1"]}]}, "inline")
    assert chain.segments[0].seeds == ["CN1"] and chain.source == "inline"


@pytest.mark.parametrize(("text", "english", "chinese"), [
    ("name: x\nsegments:\n  - id: a\n    name: A\n    ipc: [X99]\n",
     "chain.yaml: segments[0].ipc[0]: not an IPC/CPC code or prefix: 'X99'",
     "chain.yaml：segments[0].ipc[0]：不是 IPC/CPC 分类号"),
    ("name: x\nsegments:\n  - id: a\n    name: A\n    ipc: [H01M]\n    colour: red\n",
     "segments[0].colour: unknown key (allowed: ", "segments[0].colour：未知的键（可用："),
    ("name: x\nname: y\nsegments:\n" + GOOD_SEGMENT, "line 2, column 1: key 'name' appears twice",
     "第 2 行第 1 列：键 'name' 出现了两次"),
    ("name: x\n", "chain.yaml: segments: missing (required)", "chain.yaml：segments：缺少（必填）"),
    ("- x\n", "must hold a mapping with name and segments, not list",
     "文件应是含 name 和 segments 的映射，而不是 list"),
    ("name: x\nsegments: battery\n", "segments: Input should be a valid list (got str: 'battery')",
     "segments：应为列表（实际是 str：'battery'）"),
])
def test_chain_errors_in_both_languages(tmp_path: Path, text: str, english: str, chinese: str) -> None:
    with pytest.raises(ChainError) as info:
        load_chain(write(tmp_path, text))
    assert english in str(info.value) and english in info.value.message("en")
    assert chinese in info.value.message("zh") and english not in info.value.message("zh")
