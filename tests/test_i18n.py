"""The string catalogue: every key has a Chinese and an English form with the same placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.i18n import LANGS, CatalogueError, catalogue, load_catalogue, text, texts


def test_shipped_catalogue_is_complete() -> None:
    entries = catalogue()
    assert entries, "the catalogue is empty"
    for key, forms in entries.items():
        assert set(forms) == set(LANGS), key
        assert all(forms[lang].strip() for lang in LANGS), key


def test_text_fills_placeholders_and_refuses_unknown() -> None:
    assert text("common.not_provided") == "未提供"
    assert text("common.not_provided", "en") == "not provided"
    assert texts("common.", "en")["yes"] == "yes"
    with pytest.raises(KeyError):
        text("no.such.key")
    with pytest.raises(ValueError, match="unknown language"):
        text("common.yes", "fr")


@pytest.mark.parametrize(("body", "reason"), [
    ("a.b:\n  zh: 甲\n", "needs exactly"),
    ("a.b:\n  zh: '{n} 条'\n  en: '{count} rows'\n", "different placeholders"),
    ("a.b:\n  zh: ''\n  en: x\n", "non-empty"),
    ("- a\n- b\n", "must map"),
])
def test_malformed_catalogue_is_refused(tmp_path: Path, body: str, reason: str) -> None:
    (tmp_path / "x.yaml").write_text(body, "utf-8")
    with pytest.raises(CatalogueError, match=reason):
        load_catalogue(tmp_path)


def test_a_key_defined_twice_is_refused(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("k.x:\n  zh: 甲\n  en: a\n", "utf-8")
    with pytest.raises(CatalogueError, match=r"already defined in a\.yaml"):
        load_catalogue(tmp_path)
