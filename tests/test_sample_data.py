"""The bundled real sample (data/sample) and the jieba user dictionary built with it.

Everything is checked against the shipped files and ``prepare_report.json`` alone, so a fresh clone without
the shared data folder runs it; only the reproducibility test needs the shared folder (skipped otherwise).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from matcher.records import Demand, Patent, is_valid_code
from matcher.texts import CJK

pytestmark = pytest.mark.data

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
NOTICE = ROOT / "data" / "NOTICE.md"
USERDICT = ROOT / "indexes" / "resources" / "userdict_patent_zh.txt"
SHARED = Path(os.environ.get("PMATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
REPORT: dict[str, Any] = json.loads((SAMPLE / "prepare_report.json").read_text(encoding="utf-8"))
SOURCES: dict[str, dict[str, Any]] = REPORT["sources"]
EXPECTED_SOURCES = {"kppatent_tac", "kppatent_a", "cn_ipc_titles", "zhibei_offers", "uspto_nvidia", "zhibei_demands"}

ID_PATTERNS = {
    "kppatent_tac": re.compile(r"^(CN\d+[A-Z]\d?|KPZH-TAC-\d{4})$"),
    "kppatent_a": re.compile(r"^KPZH-A-\d{4}$"),
    "cn_ipc_titles": re.compile(r"^CN\d{9}[A-Z]\d?$"),
    "zhibei_offers": re.compile(r"^ZB-O[123]-\d{4}$"),
    "uspto_nvidia": re.compile(r"^US(D|RE)?\d+[A-Z]\d?$"),
    "zhibei_demands": re.compile(r"^ZB-D-\d{4}$"),
}
OFFER_MODES = {"完全转让", "许可转让", "技术入股", "合作生产", "其他"}
DEMAND_MODES = {"技术转让", "技术许可", "委托开发", "技术入股", "其他"}


def read_lines(name: str) -> list[str]:
    with gzip.open(SAMPLE / name, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict[str, Any]]]:
    return {name: [json.loads(line) for line in read_lines(name)] for name in ("patents.jsonl.gz", "demands.jsonl.gz")}


@pytest.fixture(scope="module")
def by_source(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by report source, through the file named in each record's ``source``."""
    file_to_source = {f: name for name, src in SOURCES.items() for f in src["record_source_files"]}
    grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in SOURCES}
    for name in ("patents.jsonl.gz", "demands.jsonl.gz"):
        for row in rows[name]:
            file, _, index = row["source"].partition("#")
            assert index.isdigit(), row["source"]
            grouped[file_to_source[file]].append(row)
    return grouped


def test_every_line_validates(rows: dict[str, list[dict[str, Any]]]) -> None:
    for row in rows["patents.jsonl.gz"]:
        Patent.model_validate(row)
    for row in rows["demands.jsonl.gz"]:
        Demand.model_validate(row)
    assert rows["patents.jsonl.gz"] and rows["demands.jsonl.gz"]


def test_unknown_fields_are_left_out(rows: dict[str, list[dict[str, Any]]]) -> None:
    for name, records in rows.items():
        for row in records:
            empty = [k for k, v in row.items() if v is None or v == "" or v == []]
            assert not empty, f"{name} {row['id']}: empty fields written {empty}"


def test_ids_unique_and_sorted(rows: dict[str, list[dict[str, Any]]]) -> None:
    all_ids: list[str] = []
    for records in rows.values():
        ids = [row["id"] for row in records]
        assert ids == sorted(ids), "records are sorted by id"
        all_ids.extend(ids)
    assert len(all_ids) == len(set(all_ids))


def test_expected_sources_with_report_counts(by_source: dict[str, list[dict[str, Any]]]) -> None:
    assert set(SOURCES) == EXPECTED_SOURCES
    for name, src in SOURCES.items():
        written = len(by_source[name])
        assert written == src["written"] > 0, name
        dropped = src["duplicates_dropped"] + src["merged_into_existing"] + src["dropped_no_title"]
        assert written == src["read"] - dropped
        assert written >= 0.8 * src["read"], f"{name}: more than a fifth of the source dropped"


def test_report_totals_and_checksums(rows: dict[str, list[dict[str, Any]]]) -> None:
    totals = REPORT["totals"]
    assert totals["patents"] == len(rows["patents.jsonl.gz"])
    assert totals["demands"] == len(rows["demands.jsonl.gz"])
    for name, out in REPORT["outputs"].items():
        assert out["records"] == len(rows[name])
        assert out["sha256"] == hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest(), f"{name} edited by hand?"
    kinds = Counter(row.get("kind", "(none)") for row in rows["patents.jsonl.gz"])
    assert dict(kinds) == totals["patent_kinds"]


def test_fields_filled_as_reported(by_source: dict[str, list[dict[str, Any]]]) -> None:
    for name, src in SOURCES.items():
        records = by_source[name]
        for fld, count in src["fields_filled"].items():
            assert sum(1 for r in records if fld in r) == count, f"{name}.{fld}"
        for fld in src["fields_absent"]:
            assert not any(fld in r for r in records), f"{name}.{fld} should be absent"


def test_claimed_fields_present(by_source: dict[str, list[dict[str, Any]]]) -> None:
    """What NOTICE.md says each source provides is really there (in at least one record; most in all)."""
    claims = {
        "kppatent_tac": {"title", "abstract", "claims", "keywords"},
        "kppatent_a": {"abstract", "keywords"},
        "cn_ipc_titles": {"title", "ipc", "kind"},
        "zhibei_offers": {
            "title",
            "abstract",
            "kind",
            "maturity",
            "price",
            "industry",
            "tech_area",
            "cooperation_modes",
        },
        "uspto_nvidia": {"title", "abstract", "ipc", "applicants", "applicant_type", "publication_date", "kind"},
        "zhibei_demands": {"title", "description", "industry", "cooperation_modes", "posted_date", "expiry_date"},
    }
    for name, fields in claims.items():
        for fld in fields:
            assert any(fld in r for r in by_source[name]), f"{name}: no record has {fld}"


def test_ids_and_publication_numbers(by_source: dict[str, list[dict[str, Any]]]) -> None:
    for name, pattern in ID_PATTERNS.items():
        bad = [r["id"] for r in by_source[name] if not pattern.match(r["id"])]
        assert not bad, f"{name}: {bad[:5]}"
    tac_pubnos = [r for r in by_source["kppatent_tac"] if r["id"].startswith("CN")]
    assert len(tac_pubnos) == SOURCES["kppatent_tac"]["id_from_publication_number"]
    for r in by_source["uspto_nvidia"]:  # the id is the number plus the WIPO kind code from `kind`
        assert r["id"].endswith(r["kind"].rsplit(" ", 1)[-1])


def test_source_specific_values(by_source: dict[str, list[dict[str, Any]]]) -> None:
    for r in by_source["uspto_nvidia"]:
        assert r["language"] == "en"
        assert all(is_valid_code(c) and c[0] in "ABCDEFGH" for c in r.get("ipc", []))
        assert r["applicant_type"] in {"company", "individual", "university", "institute"}
    for r in by_source["cn_ipc_titles"]:
        assert all(re.fullmatch(r"[A-H]\d{2}[A-Z]", c) for c in r["ipc"])
    for r in by_source["zhibei_offers"]:
        assert set(r["cooperation_modes"]) <= OFFER_MODES
    for r in by_source["zhibei_demands"]:
        assert set(r.get("cooperation_modes", [])) <= DEMAND_MODES
    for r in by_source["kppatent_tac"]:  # the PDF page headers are gone
        assert not re.search(r"CN\d+[A-Z]\d?(说明书|权利要求书)\d+/\d+页", r.get("claims", "") + r.get("abstract", ""))
    merged = {m["id"] for m in REPORT["merged"]}
    assert all(any(r["id"] == m and r.get("ipc") for r in by_source["kppatent_tac"]) for m in merged)


def test_licences_and_notice(by_source: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("kppatent_zh", "zhibei_market", "cn_ipc_titles", "uspto_nvidia"):
        path = SAMPLE / "LICENSES" / f"{name}.txt"
        assert path.is_file() and path.stat().st_size > 100, path
    notice = NOTICE.read_text(encoding="utf-8")
    for name, src in SOURCES.items():
        assert f"{src['written']:,}" in notice, f"NOTICE.md does not give {name}'s record count"
        for file in src["files"]:
            assert file.split("/")[0] in notice


def test_sample_size_budget() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024


def test_userdict_format_and_effect() -> None:
    jieba = pytest.importorskip("jieba")
    jieba.setLogLevel(logging.WARNING)
    lines = USERDICT.read_text(encoding="utf-8").splitlines()
    assert len(lines) == REPORT["userdict"]["written"] > 0
    words = []
    for line in lines:
        word, freq = line.split(" ")
        assert len(word) >= 2 and CJK.search(word) and int(freq) >= 1, line
        words.append(word)
    assert words == sorted(set(words))

    base = jieba.Tokenizer()
    base.initialize()
    user = jieba.Tokenizer()
    user.initialize()
    user.load_userdict(str(USERDICT))
    assert not any(base.FREQ.get(w) for w in words), "words jieba already knows are left out"
    # a keyphrase the default dictionary splits now stays whole ...
    gained = [w for w in words if list(base.cut(w, HMM=False)) != [w] and list(user.cut(w, HMM=False)) == [w]]
    assert len(gained) >= 0.9 * len(words)
    assert "丁腈胶" not in base.cut("一种丁腈胶手套的制备方法", HMM=False)
    assert "丁腈胶" in user.cut("一种丁腈胶手套的制备方法", HMM=False)
    # ... and ordinary text segments as before
    for text in ("本发明公开了一种中国有机农业产品性能提升方法", "价格过高，需要降低生产成本", "石墨烯散热膜"):
        assert list(user.cut(text)) == list(base.cut(text)), text


@pytest.mark.skipif(not (SHARED / "kppatent_zh" / "test_data_TAC.json").is_file(), reason="shared data not present")
def test_prepare_reproduces_the_shipped_files(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    userdict = tmp_path / "userdict_patent_zh.txt"
    cmd = [sys.executable, str(ROOT / "data" / "prepare.py"), "--shared", str(SHARED), "--out", str(out)]
    result = subprocess.run([*cmd, "--userdict", str(userdict)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    shipped = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    rebuilt = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert rebuilt == shipped
    for rel in shipped:
        assert (out / rel).read_bytes() == (SAMPLE / rel).read_bytes(), f"{rel} differs from a fresh run"
    assert userdict.read_bytes() == USERDICT.read_bytes()


def test_notice_gives_every_derived_count(rows: dict[str, list[dict[str, Any]]]) -> None:
    notice = NOTICE.read_text(encoding="utf-8")
    derived = REPORT["totals"]["derived"]
    counted: Counter[str] = Counter()
    for row in rows["patents.jsonl.gz"]:
        counted.update(f"{f} <- {rule}" for f, rule in row.get("derived", {}).items())
    assert dict(counted) == derived
    by_field: Counter[str] = Counter()
    for key, n in derived.items():
        field, rule = key.split(" <- ")
        by_field[f"{field} <- {rule.split(':')[0]}"] += n
    for key, n in by_field.items():
        assert f"{n:,}" in notice, f"NOTICE.md does not give the count of {key} ({n:,})"
