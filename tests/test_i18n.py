"""The string catalogue: every key has a Chinese and an English form with the same placeholders."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from matcher.i18n import LANGS, CatalogueError, catalogue, load_catalogue, text, texts

ROOT = Path(__file__).resolve().parent.parent


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


# what the command line shows goes through these calls; a literal English word in one is a string that bypassed
# the catalogue (a markup tag such as [bold] or [/] is not a word)
_SHOWN_BY = {"print", "fail", "warn", "add_column", "add_row", "Table", "status", "add_task", "update",
             "Option", "Argument", "Typer", "command", "callback"}
_HELP_ONLY = {"Option", "Argument", "Typer", "command", "callback"}  # only their help= is text (--help)
_MARKUP = re.compile(r"\[/?[a-z ]*\]")


def _literal_parts(node: ast.AST) -> list[str]:
    """The literal text of an argument: string constants and f-string pieces, not what a call (``text(key)``)
    returns."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.BinOp):
        return _literal_parts(node.left) + _literal_parts(node.right)
    if isinstance(node, ast.IfExp):
        return _literal_parts(node.body) + _literal_parts(node.orelse)
    return []


def _english_literals(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name not in _SHOWN_BY:
            continue
        shown = node.args if name not in _HELP_ONLY else []  # an option's args are its flags, a command's its name
        for arg in [*shown, *(k.value for k in node.keywords if k.arg in ("title", "description", "help"))]:
            found += [(node.lineno, part) for part in _literal_parts(arg)
                      if re.search(r"[A-Za-z]{2,}", _MARKUP.sub("", part))]
    return found


def test_cli_output_strings_come_from_the_catalogue() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {part!r}" for path in sorted((ROOT / "api" / "cli").glob("*.py"))
             for line, part in _english_literals(ast.parse(path.read_text("utf-8")))]
    assert found == []


def test_the_check_sees_an_english_literal() -> None:
    """The check above is not vacuous: each shape of literal it reads is caught, and catalogue calls and markup
    are not."""
    tree = ast.parse('console.print(f"wrote {x}")\nfail("no such file", 2)\nTable(title="a" + "rows")\n'
                     'console.print(text("cli.wrote", lang))\nconsole.print(f"[bold]{x}[/] #{n}")\n'
                     'err.print("x" if ok else "not built")\ntyper.Option("--home", help="Data folder")\n'
                     'typer.Option("--home", help=h("options.HomeOpt"))')
    assert [line for line, _ in _english_literals(tree)] == [1, 2, 3, 6, 7]


def test_cli_speaks_the_language_asked_for(tmp_path: Path) -> None:
    """A read command's error, table headers and explanations follow --lang: Chinese by default, English on
    request."""
    from typer.testing import CliRunner

    from api.cli.main import app

    empty = tmp_path / "none"
    zh = CliRunner().invoke(app, ["stats", "--home", str(empty)])
    en = CliRunner().invoke(app, ["stats", "--home", str(empty), "--lang", "en"])
    assert zh.exit_code == en.exit_code == 1
    zh_err, en_err = "".join(zh.stderr.split()), " ".join(en.stderr.split())  # wrapped at the console's width
    assert zh_err.startswith("错误：") and "不是patent-match工作区" in zh_err and "holds" not in zh_err
    assert en_err.startswith("error: ") and "holds no patent-match workspace" in en_err
    bad = CliRunner().invoke(app, ["stats", "--home", str(empty), "--lang", "fr"])
    assert bad.exit_code == 2 and "--lang" in bad.stderr


def test_a_message_round_trips_as_plain_data() -> None:
    """A run's warnings are stored as key and parameters (JSON), and said later in the reader's language."""
    from matcher.i18n import Message

    warning = Message("chain.warn.dead_keywords", segment="s1", count=2, keywords="甲, 乙")
    data = json.loads(json.dumps(warning.to_dict(), ensure_ascii=False))
    assert Message.from_dict(data) == warning
    assert Message.from_dict(data).text("zh") == "环节 s1：有 2 个关键词既不匹配任何专利也不匹配任何需求：甲, 乙"
    assert Message.from_dict(data).text("en") == "segment s1: 2 keyword(s) match no patent and no demand: 甲, 乙"


def test_localised_errors_survive_pickling() -> None:
    """A Ray worker's error reaches the driver pickled: it must come back as the same message, in both languages."""
    import pickle

    from matcher.chains import ChainError
    from matcher.engine import EngineUnavailable
    from matcher.i18n import Message
    from matcher.matching import UnknownRecord
    from matcher.search import NotIndexed

    for exc in (NotIndexed("search.no_index", kind="patents", home="/w"),
                UnknownRecord("search.unknown_patent", id="X"),
                EngineUnavailable("engine.unreachable", address="h:1", reason="refused")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and back.key == exc.key and back.params == exc.params
        assert back.message("zh") == exc.message("zh") and str(back) == str(exc)
    chain = ChainError(Message("chain.no_file", path="a.yaml"), Message("chain.missing"))
    back = pickle.loads(pickle.dumps(chain))
    assert back.message("zh") == chain.message("zh") and back.message("en").splitlines() == ["a.yaml: no such file",
                                                                                               "missing (required)"]


def test_a_cli_error_shows_brackets_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """What a user wrote (a chain's segment name, a path) is printed as text, never read as rich markup."""
    from api.cli.common import fail

    assert fail("segments[1]: 'x[/b] [bold]'", 2, "en").exit_code == 2
    assert "error: segments[1]: 'x[/b] [bold]'" in capsys.readouterr().err
