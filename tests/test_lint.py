"""The code base stays ruff-clean (the same check `make lint` runs)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean() -> None:
    # ruff comes with the dev extra; run it through this interpreter so the venv's copy is used
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _redefinitions(tree: ast.AST) -> list[str]:
    """Functions defined twice in one module or class body (the later silently replaces the earlier)."""
    found = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(node, ast.Module | ast.ClassDef) or not isinstance(body, list):
            continue
        seen: dict[str, int] = {}
        for stmt in body:
            if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            decorators = {ast.unparse(d) for d in stmt.decorator_list}
            if any(d.endswith((".setter", ".deleter", "overload")) for d in decorators):
                continue
            if stmt.name in seen:
                found.append(f"{stmt.name} (lines {seen[stmt.name]} and {stmt.lineno})")
            seen[stmt.name] = stmt.lineno
    return found


def test_no_function_is_defined_twice_in_one_scope() -> None:
    # ruff's F811 let a second Service._published (api/http/state.py) replace the one that woke the standing worker
    problems = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts or path.parts[len(ROOT.parts)] in {"notebooks", ".cache"}:
            continue
        for where in _redefinitions(ast.parse(path.read_text("utf-8"))):
            problems.append(f"{path.relative_to(ROOT)}: {where}")
    assert not problems, problems
