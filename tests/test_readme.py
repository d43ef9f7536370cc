"""Every `pmatch` example in the README runs on the bundled sample and shows at least one result.

The workspace is made as a new user makes it: `pmatch demo` (which ingests the full sample through the ingest
path, seeds the shipped vectors and builds the indexes). Each README command is then run as written, with
``--json`` added where the command has it so the results can be counted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.data]  # each README command in a subprocess, on a demo of the whole sample

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUN = {"search", "match", "shortlist", "push", "stats"}  # eval, ingest and index build make no result list


def readme_commands() -> list[list[str]]:
    commands = []
    in_code = False
    lines = README.read_text("utf-8").replace("\\\n", " ").splitlines()  # join continued lines
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code and line.startswith(".venv/bin/pmatch "):
            args = shlex.split(line.removeprefix(".venv/bin/pmatch "), comments=True)
            if args and args[0] in RUN:
                commands.append(args)
    return commands


def run(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PMATCH_HOME": str(home), "COLUMNS": "200",
           "PMATCH_VECTOR_CACHE": str(home.parent / "vectors.sqlite")}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=1800)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("readme") / "home"
    result = run(home, ROOT, "demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


def test_readme_has_examples() -> None:
    assert len(readme_commands()) >= 8


@pytest.mark.parametrize("args", readme_commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_shows_a_result(demo_home: Path, tmp_path: Path, args: list[str]) -> None:
    json_able = args[0] in ("search", "match")
    full = [*args, "--json"] if json_able and "--json" not in args else args
    result = run(demo_home, tmp_path, *[str(ROOT / a) if a.startswith(("data/", "eval/")) else a for a in full])
    assert result.returncode == 0, result.stderr[-2000:]
    if json_able:
        body = json.loads(result.stdout)
        found = body.get("results", body.get("enterprises"))
        assert found, f"no result for {' '.join(args)}: {body.get('filter_report')}"
    elif args[0] in ("shortlist", "push"):
        out = tmp_path / args[args.index("--out") + 1]
        import openpyxl

        sheet = openpyxl.load_workbook(out, read_only=True).worksheets[0]
        assert sum(1 for _ in sheet.iter_rows()) >= 2, f"{' '.join(args)} wrote no row"
    else:
        assert "专利/成果" in result.stdout and re.search(r"\b\d{4,}\b", result.stdout)  # the record counts (zh)
