"""Ingest: every format lands the same records; every kind of bad input fails clearly and changes nothing."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import openpyxl
import pytest

from matcher.ingest import IngestError, ingest_file, read_file
from matcher.records import MAX_TEXT
from matcher.store import Store

GOOD = [
    {"id": "CN113914863A", "title": "一种近水平薄矿体智能掘进机机械开采方法", "abstract": "沿矿体走向划分盘区",
     "ipc": ["E21C41/16"], "applicants": ["中南大学"], "applicant_type": "university",
     "application_date": "2021-10-15"},
    {"id": "US10001996B2", "title": "Selective poisoning of data during runahead",
     "abstract": "Embodiments related to selecting a runahead poison policy.", "ipc": ["G06F9/38"],
     "applicants": ["NVIDIA CORPORATION"], "applicant_type": "company", "language": "en"},
    {"id": "CN2", "title": "一种石墨烯散热膜", "abstract": "石墨烯 graphene 散热膜", "legal_status": "valid"},
]
# The same records as a user's spreadsheet would have them: Chinese headers, joined lists.
ZH_HEADER = ["公开号", "名称", "摘要", "主分类号", "申请人", "申请人类型", "申请日", "法律状态", "语言"]


def zh_rows() -> list[list[str]]:
    rows = []
    for r in GOOD:
        rows.append([r["id"], r["title"], r["abstract"], ";".join(r.get("ipc", [])), ";".join(r.get("applicants", [])),
                     {"university": "高校", "company": "企业"}.get(r.get("applicant_type", ""), ""),
                     r.get("application_date", ""), {"valid": "有效"}.get(r.get("legal_status", ""), ""),
                     r.get("language", "")])
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def fingerprint(store: Store) -> tuple:
    """Everything a failed ingest must not change."""
    records = [r.model_dump_json() for k in ("patents", "demands") for r in store.iter_records(k)]  # type: ignore[arg-type]
    return (store.data_version, store.count("patents"), store.count("demands"), len(store.batches(1000)),
            hashlib.sha1("\n".join(records).encode()).hexdigest())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store.sqlite")
    # a store that already holds data: a failed batch must leave it exactly so
    ingest_file(s, write_jsonl(tmp_path / "seed.jsonl", [GOOD[0]]), "patents")
    yield s
    s.close()


def canonical(store: Store) -> dict[str, dict]:
    return {r.id: r.model_dump(mode="json") for r in store.iter_records("patents")}


# --- formats ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv-utf8", "csv-gb18030", "xlsx", "tsv"])
def test_each_format_lands_the_same_records(tmp_path: Path, fmt: str) -> None:
    reference = Store(tmp_path / "ref.sqlite")
    ingest_file(reference, write_jsonl(tmp_path / "ref.jsonl", GOOD), "patents")
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "p.jsonl", GOOD)
    elif fmt == "json":
        path = tmp_path / "p.json"
        path.write_text(json.dumps(GOOD, ensure_ascii=False), encoding="utf-8")
    elif fmt == "csv-utf8":
        path = write_csv(tmp_path / "p.csv", ZH_HEADER, zh_rows())
    elif fmt == "csv-gb18030":
        path = write_csv(tmp_path / "p.csv", ZH_HEADER, zh_rows(), encoding="gb18030")
        assert b"\xe4\xb8" not in path.read_bytes()[:40]  # really not UTF-8
    elif fmt == "tsv":
        path = tmp_path / "p.tsv"
        path.write_text("\n".join("\t".join(r) for r in [ZH_HEADER, *zh_rows()]) + "\n", encoding="utf-8")
    else:
        path = write_xlsx(tmp_path / "p.xlsx", ZH_HEADER, zh_rows())
    store = Store(tmp_path / "s.sqlite")
    report = ingest_file(store, path, "patents")
    assert report.inserted == len(GOOD)
    assert canonical(store) == canonical(reference)
    got = store.get("patents", "CN113914863A")
    assert got is not None and got.ipc == ["E21C41/16"] and got.applicant_type == "university"
    assert str(got.application_date) == "2021-10-15"


def test_gb18030_is_detected(tmp_path: Path) -> None:
    parsed = read_file(write_csv(tmp_path / "p.csv", ZH_HEADER, zh_rows(), encoding="gb18030"), "patents")
    assert parsed.encoding == "gb18030" and not parsed.errors
    assert parsed.records[0].title == GOOD[0]["title"]


def test_column_mapping_for_foreign_headers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["Patent No.", "Title", "Notes"], [["CN9", "一种电池", "internal"]])
    with pytest.raises(IngestError, match=r"Patent No\.: unknown column"):
        read_file(path, "patents")
    parsed = read_file(path, "patents", {"Patent No.": "id", "Notes": ""})
    assert [r.id for r in parsed.records] == ["CN9"] and not parsed.errors


def test_demands_ingest_with_chinese_headers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", ["需求编号", "需求名称", "需求描述", "合作方式", "地区", "发布日期"],
                     [["D1", "防起球的工艺改进", "针织围巾容易起球", "技术转让,技术许可", "浙江", "2020/01/13"]])
    store = Store(tmp_path / "s.sqlite")
    ingest_file(store, path, "demands")
    d = store.get("demands", "D1")
    assert d is not None and d.cooperation_modes == ["技术转让", "技术许可"] and d.region == "浙江"
    assert str(d.posted_date) == "2020-01-13"


def test_upsert_and_exact_duplicates(store: Store, tmp_path: Path) -> None:
    changed = dict(GOOD[0], abstract="沿矿体走向划分盘区，盘区内布置矿块")
    twin = dict(GOOD[2], id="CN2-COPY", title="一种石墨烯散热膜 ")  # same normalised title + abstract
    report = ingest_file(store, write_jsonl(tmp_path / "u.jsonl", [changed, GOOD[2], twin]), "patents")
    assert (report.inserted, report.updated) == (1, 1)
    assert report.duplicates == [("CN2-COPY", "CN2")]
    assert store.count("patents") == 2
    assert store.resolve("patents", "CN2-COPY") == "CN2"  # kept as an alias of the stored record
    copy = store.get("patents", "CN2-COPY")
    assert copy is not None and copy.id == "CN2"
    assert store.resolve("patents", "nope") is None
    store.delete("patents", ["CN2"])
    assert store.resolve("patents", "CN2-COPY") is None


# --- bad input: a clear error naming file, line and field, and nothing changed -----------------------------
BAD_CASES: dict[str, tuple[str, str]] = {
    # name: (file content as JSONL/CSV text, expected message pattern)
    "missing required field": ('{"id": "A1", "title": "ok"}\n{"id": "A2"}\n', r"bad\.jsonl:2: .*title or an abstract"),
    "wrong type": ('{"id": "A1", "title": "ok", "ipc": 5}\n', r"bad\.jsonl:1: ipc: .*valid list"),
    "bad date": ('{"id": "A1", "title": "ok", "application_date": "2021-02-30"}\n',
                 r"bad\.jsonl:1: application_date: .*date"),
    "duplicate id in file": ('{"id": "A1", "title": "x"}\n{"id": "A1", "title": "y"}\n',
                             r"bad\.jsonl:2: id: duplicate id 'A1' \(first at line 1\)"),
    "truncated JSONL line": ('{"id": "A1", "title": "ok"}\n{"id": "A2", "title": "o\n', r"bad\.jsonl:2: invalid JSON"),
    "unknown field": ('{"id": "A1", "title": "ok", "colour": "red"}\n', r"bad\.jsonl:1: colour: unknown column"),
    "oversized field": ('{"id": "A1", "title": "ok", "claims": "' + "x" * (MAX_TEXT + 1) + '"}\n',
                        r"bad\.jsonl:1: claims: .*at most 200000"),
    "invalid IPC code": ('{"id": "A1", "title": "ok", "ipc": ["not-a-code"]}\n', r"bad\.jsonl:1: ipc: not an IPC"),
    "bad enum value": ('{"id": "A1", "title": "ok", "applicant_type": "alien"}\n', r"bad\.jsonl:1: applicant_type"),
    "not an object": ('["A1", "title"]\n', r"bad\.jsonl:1: expected a JSON object"),
    "id with spaces": ('{"id": "A 1", "title": "ok"}\n', r"bad\.jsonl:1: id: ' ' at position 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_jsonl_fails_whole_and_changes_nothing(store: Store, tmp_path: Path, case: str) -> None:
    content, pattern = BAD_CASES[case]
    path = tmp_path / "bad.jsonl"
    path.write_text(content + '{"id": "GOOD1", "title": "a valid row that must not land"}\n', encoding="utf-8")
    before = fingerprint(store)
    with pytest.raises(IngestError, match=pattern) as info:
        ingest_file(store, path, "patents")
    assert "nothing was written" in str(info.value)
    assert fingerprint(store) == before
    assert store.get("patents", "GOOD1") is None


def test_empty_file(store: Store, tmp_path: Path) -> None:
    before = fingerprint(store)
    for name, content in (("empty.jsonl", b""), ("blank.jsonl", b"\n\n"), ("header.csv", b"id,title\n")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(IngestError, match=rf"{re.escape(name)}: (empty file|no records)"):
            ingest_file(store, path, "patents")
    assert fingerprint(store) == before


def test_binary_garbage(store: Store, tmp_path: Path) -> None:
    before = fingerprint(store)
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(IngestError, match=r"garbage\.csv(:1)?: binary data"):
        ingest_file(store, path, "patents")
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 this is not really a workbook" * 10)
    with pytest.raises(IngestError, match=r"fake\.xlsx: (not an XLSX|unreadable XLSX)"):
        ingest_file(store, fake, "patents")
    assert fingerprint(store) == before


def test_wrong_encoding(store: Store, tmp_path: Path) -> None:
    before = fingerprint(store)
    path = tmp_path / "latin.csv"
    # Bytes that are neither UTF-8 nor GB18030 (0x80 alone and 0xFF are invalid lead bytes in both).
    path.write_bytes(b"id,title\nA1,caf" + b"\xff\x80\n")
    with pytest.raises(IngestError, match=r"latin\.csv:2: not UTF-8 or GB18030"):
        ingest_file(store, path, "patents")
    assert fingerprint(store) == before


def test_unknown_column_in_csv_names_the_column(store: Store, tmp_path: Path) -> None:
    before = fingerprint(store)
    path = write_csv(tmp_path / "p.csv", ["公开号", "名称", "备注"], [["CN7", "一种电池", "x"]])
    with pytest.raises(IngestError, match=r"p\.csv:1: 备注: unknown column"):
        ingest_file(store, path, "patents")
    assert fingerprint(store) == before


def test_bad_row_in_xlsx_names_row_and_column(store: Store, tmp_path: Path) -> None:
    before = fingerprint(store)
    rows = zh_rows()
    rows[1][6] = "2021-13-45"
    path = write_xlsx(tmp_path / "p.xlsx", ZH_HEADER, rows)
    with pytest.raises(IngestError, match=r"p\.xlsx:3: 申请日: "):
        ingest_file(store, path, "patents")
    assert fingerprint(store) == before


def test_skip_invalid_writes_rejects_and_lands_the_rest(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "OK1", "title": "一种电池"}\n{"id": "BAD1"}\n{"id": "OK2", "title": "a"}\n{"id":\n',
                    encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    report = ingest_file(store, path, "patents", skip_invalid=True, rejects_path=rejects)
    assert report.inserted == 2 and report.rejected == 2
    lines = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
    assert [x["line"] for x in lines] == [2, 4]
    assert lines[0]["row"] == {"id": "BAD1"} and "专利需要名称或摘要" in lines[0]["errors"][0]  # zh by default
    ingest_file(store, path, "patents", skip_invalid=True, rejects_path=rejects, lang="en")
    lines = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
    assert "title or an abstract" in lines[0]["errors"][0]
    assert store.get("patents", "OK2") is not None


def test_failure_inside_the_write_rolls_back(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing dies half-way (disk full, a bug), the transaction leaves the store as it was."""
    before = fingerprint(store)
    calls = {"n": 0}
    original = Store._upsert

    def dying_upsert(self: Store, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "_upsert", dying_upsert)
    with pytest.raises(OSError, match="disk full"):
        ingest_file(store, write_jsonl(tmp_path / "p.jsonl", GOOD), "patents")
    assert fingerprint(store) == before


# --- IPC codes in every printed form (defect 5) -------------------------------------------------------------
PRINTED_CODES = [
    ("G06F 21/10", "G06F21/10"),  # the standard's own space between subclass and group
    ("G06F  21/10", "G06F21/10"),  # WIPO's padding
    ("G06F21/10(2013.01)I", "G06F21/10"),  # CNIPA: version stamp and inventive flag
    ("G06F 21/10 (20130101)", "G06F21/10"),  # USPTO bulk data
    ("H01M 4/58 (2010.01)", "H01M4/58"),  # USPTO front page
    ("G06F0021100000", "G06F21/10"),  # EPO/DOCDB fixed width
    ("Ｈ０１Ｍ　４／５８", "H01M4/58"),  # full-width letters, digits, space and slash (NFKC)
    ("H٠١M ٤/٥٨", "H01M4/58"),  # Arabic-Indic digits
    ("h01m 4/58", "H01M4/58"),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_ipc_codes_in_every_printed_form(tmp_path: Path, fmt: str) -> None:
    rows = [[f"P{i}", f"一种电池{i}", printed] for i, (printed, _) in enumerate(PRINTED_CODES)]
    rows.append(["PMANY", "一种电池组", "G06F 21/10 (2013.01); H01M 4/58 (2010.01)I H01M10/0525、B60L 50/64"])
    if fmt == "csv":
        path = write_csv(tmp_path / "p.csv", ["公开号", "名称", "主分类号"], rows)
    elif fmt == "xlsx":
        path = write_xlsx(tmp_path / "p.xlsx", ["公开号", "名称", "主分类号"], rows)
    else:  # JSON lists hold one code per item, in any printed form
        path = write_jsonl(tmp_path / "p.jsonl", [{"id": r[0], "title": r[1], "ipc": [r[2]]} for r in rows[:-1]])
    store = Store(tmp_path / "s.sqlite")
    ingest_file(store, path, "patents")
    for i, (_, canonical_code) in enumerate(PRINTED_CODES):
        got = store.get("patents", f"P{i}")
        assert got is not None and got.ipc == [canonical_code], (PRINTED_CODES[i], got)
    if fmt != "jsonl":
        many = store.get("patents", "PMANY")
        assert many is not None and many.ipc == ["G06F21/10", "H01M4/58", "H01M10/0525", "B60L50/64"]
    # one facet value per code, however it was printed: the H01M filter finds the full-width one
    counts = dict(store.facet_counts("patents", "ipc"))
    assert counts["H01M4/58"] == sum(1 for _, c in PRINTED_CODES if c == "H01M4/58") + (fmt != "jsonl")
    assert not [v for v in counts if not v.isascii() or " " in v]


# --- invisible characters: refused in ids, normalised and reported in text (defect 3) ------------------------
def test_control_and_zero_width_characters_in_text_are_normalised_and_reported(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "A1", "title": "一种高强Al-Zn\x02Mg-Cu合金", "abstract": "第一行\n第二\u200b行"},
        {"id": "A2", "title": "plain"},
    ])
    store = Store(tmp_path / "s.sqlite")
    report = ingest_file(store, path, "patents", lang="en")
    got = store.get("patents", "A1")
    assert got is not None and got.title == "一种高强Al-Zn Mg-Cu合金" and got.abstract == "第一行\n第二行"
    assert [n.split(": ", 1)[1] for n in report.normalised] == [
        "title: removed invisible or control characters (U+0002)",
        "abstract: removed invisible or control characters (U+200B)",
    ]
    assert report.normalised[0].startswith(f"{path}:1: ")
    assert store.batches(1)[0]["normalised"] == report.normalised  # kept with the batch


def test_lookalike_ids_are_refused_not_merged(store: Store, tmp_path: Path) -> None:
    before = fingerprint(store)
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "CN113914863\u200bA", "title": "一种电池"}])
    with pytest.raises(IngestError, match=r"p\.jsonl:1: id: invisible or control character U\+200B at position 12"):
        ingest_file(store, path, "patents")
    assert fingerprint(store) == before


# --- limits and lines ------------------------------------------------------------------------------------
def test_csv_field_longer_than_the_csv_modules_limit_is_read(tmp_path: Path) -> None:
    claims = "一种" * 80_000  # 160,000 characters: over csv's own 131,072, within the model's 200,000
    path = write_csv(tmp_path / "p.csv", ["id", "title", "claims"], [["A1", "ok", claims]])
    parsed = read_file(path, "patents")
    assert not parsed.errors and parsed.records[0].claims == claims


def test_jsonl_lines_end_only_at_newline(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "A1", "title": "one\u2028two"}\n{"id": "A2", "title": "x"}\n', encoding="utf-8")
    parsed = read_file(path, "patents")
    assert not parsed.errors and [r.id for r in parsed.records] == ["A1", "A2"]


# --- the vocabulary is data an operator extends ------------------------------------------------------------
def test_operator_vocabulary_adds_headers_and_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "p.csv", ["Patent No.", "Title", "Status"], [["CN9", "一种电池", "in force"]])
    with pytest.raises(IngestError, match=r"Patent No\.: unknown column"):
        read_file(path, "patents")
    extra = tmp_path / "vocabulary.yaml"
    extra.write_text("format_version: 1\nheaders:\n  patents:\n    id: ['Patent No.']\n    legal_status: [Status]\n"
                     "values:\n  legal_status:\n    valid: [in force]\n", encoding="utf-8")
    monkeypatch.setenv("PMATCH_INGEST_VOCABULARY", str(extra))
    parsed = read_file(path, "patents")
    assert not parsed.errors and parsed.records[0].id == "CN9" and parsed.records[0].legal_status == "valid"
    clash = tmp_path / "clash.yaml"  # a name may not mean two fields: the operator hears which and where
    clash.write_text("format_version: 1\nheaders:\n  patents:\n    id: [名称]\n", encoding="utf-8")
    monkeypatch.setenv("PMATCH_INGEST_VOCABULARY", str(clash))
    with pytest.raises(ValueError, match=r"clash\.yaml: headers\.patents: '名称' already means 'title'"):
        read_file(path, "patents")


# --- one policy for files and JSON bodies ------------------------------------------------------------------
def test_json_bodies_are_validated_in_memory_by_the_same_rules(tmp_path: Path) -> None:
    from matcher.ingest import accepted, read_objects

    parsed = read_objects([{"id": "A1", "title": "ok", "legal_status": "有效", "ipc": ["G06F 21/10"]},
                           {"id": "A2"}], "patents")
    assert [str(e) for e in parsed.errors] == ["records:2: a patent needs a title or an abstract"]
    assert parsed.records[0].legal_status == "valid" and parsed.records[0].ipc == ["G06F21/10"]
    with pytest.raises(IngestError, match="records:2: a patent needs"):
        accepted(parsed, "records", skip_invalid=False)
    assert [r.id for r in accepted(parsed, "records", skip_invalid=True)] == ["A1"]
    with pytest.raises(IngestError, match="records: no valid records"):
        accepted(read_objects([{"id": "A2"}], "patents"), "records", skip_invalid=True)
