"""Import direction, read from the source with ``ast``: ``api -> matcher -> indexes`` and ``eval -> matcher``.

Every import counts, at module level or inside a function (a lazy import is still a dependency). Allowed:
``indexes`` imports no other package of the project; ``matcher`` imports ``indexes``; ``eval`` imports
``matcher`` and ``indexes``; ``api`` imports ``matcher`` and ``indexes``, and only ``api.cli`` imports ``eval``.
No module imports itself back through others (no circle), counting modules, not packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("indexes", "matcher", "api", "eval")
ALLOWED = {"indexes": set(), "matcher": {"indexes"}, "eval": {"matcher", "indexes"}, "api": {"matcher", "indexes"}}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_imports_follow_the_layers() -> None:
    wrong = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other == top:
                continue
            if other == "eval" and name.startswith("api.cli"):
                continue
            if other not in ALLOWED[top]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against api -> matcher -> indexes, eval -> matcher:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_checker_sees_imports() -> None:
    """The graph is not empty by mistake: known edges are found (a function-level one included)."""
    edges = graph()
    assert "matcher.search" in edges["api.http.state"]
    assert "eval.beir" in edges["api.cli.eval"]  # imported inside the commands
    assert "indexes.bm25" in edges["matcher.indexing"]
