"""The bad-input corpus (tests/data/bad/) through ``pmatch ingest``: each file gets its clear message naming file,
line and field, in English (``--lang en``) and in Chinese (the default), exits 1 without a traceback, and leaves the
store exactly as it was (fingerprint before/after, ``PRAGMA integrity_check``). Every case runs in-process through
the CLI's own command; a few run as a real subprocess too."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.cli.common import err
from matcher.store import Store

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad"
EXPECTED: dict[str, dict[str, str]] = json.loads((BAD / "expected.json").read_text("utf-8"))
CJK = re.compile(r"[\u3400-\u9fff]")
SEED = [{"id": "CN113914863A", "title": "一种近水平薄矿体智能掘进机机械开采方法", "ipc": ["E21C41/16"]},
        {"id": "US10001996B2", "title": "Selective poisoning of data during runahead", "language": "en"}]


def store_fingerprint(store_path: Path) -> tuple[str, str]:
    """(integrity_check, hash of every table's rows): anything a refused batch could have changed."""
    db = sqlite3.connect(store_path)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        digest = hashlib.sha256()
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").fetchall():
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1"):
                digest.update(repr(row).encode())
        return integrity, digest.hexdigest()
    finally:
        db.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("bad") / "home"
    seed = home.parent / "seed.jsonl"
    seed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in SEED), "utf-8")
    result = CliRunner().invoke(app, ["ingest", "patents", str(seed), "--home", str(home)])
    assert result.exit_code == 0, result.output
    with Store(home / "store.sqlite") as store:
        assert store.count("patents") == 2
    return home


def test_the_corpus_is_large_and_complete() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.name not in ("make_corpus.py", "expected.json", "README.md")}
    assert on_disk == set(EXPECTED)
    assert len(EXPECTED) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_gets_its_message_and_changes_nothing(home: Path, name: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = EXPECTED[name]
    path = BAD / name
    before = store_fingerprint(home / "store.sqlite")
    monkeypatch.setattr(err, "width", 100_000)  # one message, one line: no wrapping inside the path
    results = {lang: CliRunner().invoke(app, ["ingest", case["kind"], str(path), "--home", str(home), "--lang", lang])
               for lang in ("en", "zh")}
    after = store_fingerprint(home / "store.sqlite")
    assert after == before and after[0] == "ok", "STORE CHANGED"  # checked first: a clear message does not excuse it
    outputs = {}
    for lang, result in results.items():
        assert result.exit_code == 1, result.output
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
            result.exception
        assert "Traceback" not in result.output
        outputs[lang] = result.output
    assert re.search(re.escape(f"error: {path}") + case["message"], outputs["en"]), outputs["en"]
    assert "nothing was written" in outputs["en"]
    # Chinese: the reason is worded in Chinese (every catalogue reason has a zh form), and where the corpus gives
    # the Chinese message, it is that one
    reason_zh = outputs["zh"].split(f"错误：{path}", 1)[1]
    assert CJK.search(reason_zh.split("\n")[0]) and "未写入任何数据" in outputs["zh"], outputs["zh"]
    if "message_zh" in case:
        assert re.search(re.escape(f"错误：{path}") + case["message_zh"], outputs["zh"]), outputs["zh"]
    assert after == before and after[0] == "ok"


def test_the_language_comes_from_pmatch_lang(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = BAD / "unclosed_quote.csv"
    monkeypatch.setattr(err, "width", 100_000)
    english = CliRunner().invoke(app, ["ingest", "patents", str(path), "--home", str(home)],
                                 env={"PMATCH_LANG": "en"})
    assert "malformed CSV" in english.output and "nothing was written" in english.output
    chinese = CliRunner().invoke(app, ["ingest", "patents", str(path), "--home", str(home)], env={"PMATCH_LANG": ""})
    assert "CSV 格式错误" in chinese.output
    wrong = CliRunner().invoke(app, ["ingest", "patents", str(path), "--home", str(home), "--lang", "fr"])
    assert wrong.exit_code == 2


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["unclosed_quote.csv", "deep_nesting.json", "xlsx_second_sheet.xlsx"])
def test_bad_input_through_the_real_command(home: Path, name: str) -> None:
    case = EXPECTED[name]
    path = BAD / name
    before = store_fingerprint(home / "store.sqlite")
    env = {**os.environ, "COLUMNS": "100000", "PMATCH_LANG": "en"}
    result = subprocess.run([sys.executable, "-m", "api.cli", "ingest", case["kind"], str(path), "--home", str(home)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 1
    assert re.search(re.escape(f"error: {path}") + case["message"], result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert store_fingerprint(home / "store.sqlite") == before
