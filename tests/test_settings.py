"""The non-HTTP settings: read through IndexSettings / EngineSettings, documented in the README's one table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from indexes.settings import IndexSettings, SettingsError, index_settings
from matcher.config import load_config
from matcher.settings import EngineSettings, engine_settings
from matcher.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    rows = dict(re.findall(r"^\| `(PMATCH_[A-Z_]+)` \| `([^`]+)` \|", readme, re.MULTILINE))
    for cls in (IndexSettings, EngineSettings):
        for field in cls.model_fields:
            assert rows.get(f"PMATCH_{field.upper()}") == f"{cls.__name__}.{field}", field


def test_no_pmatch_variable_is_read_outside_the_settings_classes() -> None:
    # a read: os.environ.get("PMATCH_X"), os.getenv(...), os.environ["PMATCH_X"] not followed by "=" (a write,
    # which limit_threads and build processes do for libraries and child processes)
    read = re.compile(r"os\.(?:environ\.get|getenv)\(\s*[\"']PMATCH_(?!API_)"
                      r"|os\.environ\[\s*[\"']PMATCH_(?!API_)\w+[\"']\s*\](?!\s*=[^=])")
    for folder in ("matcher", "indexes", "api/cli", "eval"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not read.search(path.read_text("utf-8")), path


def test_settings_are_read_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PMATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PMATCH_VECTOR_CACHE", "")  # empty: unset
    monkeypatch.setenv("PMATCH_CACHE", str(tmp_path / "models"))
    assert Workspace().home == tmp_path / "home"
    assert Workspace().vector_cache_path == tmp_path / "models" / "vectors.sqlite"
    config = tmp_path / "ranker.json"
    config.write_text('{"mode": "bm25"}', "utf-8")
    monkeypatch.setenv("PMATCH_RANKER_CONFIG", str(config))
    assert engine_settings().ranker_config == config and load_config().mode == "bm25"
    monkeypatch.setenv("PMATCH_APPLICANT_RULES", "a.yaml::b.yaml")
    assert engine_settings().applicant_rule_files() == ["a.yaml", "b.yaml"]


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("PMATCH_INDEX_WORKERS", "0", "must be a positive integer"),
    ("PMATCH_EMBED_THREADS", "two", "must be a positive integer"),
    ("PMATCH_LIMIT_TORCH", "maybe", "must be 1 or 0"),
])
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^{name} {reason}.*, got '{value}'$"):
        index_settings()
