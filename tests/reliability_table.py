"""The reliability figures of issue 11's closing note, counted by the test suite itself.

    PYTHONPATH=. python tests/reliability_table.py            # prints a Markdown table and a JSON line
    PYTHONPATH=. python tests/reliability_table.py --no-kill9  # the bad inputs only (a minute, not ten)

Runs, with pytest: every file of the bad-input corpus (tests/data/bad/) through ``pmatch ingest`` and through the
HTTP upload (``test_bad_inputs``, ``test_api_hardening``; each case asserts the store fingerprint before/after,
``PRAGMA integrity_check``, first, then the message in English and Chinese), and the kill -9 runs during ingest
and index build (``test_kill9``, ``$PMATCH_KILL9_RUNS`` runs each, default 3, each printing ``KILL9 ...
killed=... consistent=...``). A case that failed on ``STORE CHANGED`` counts as a corrupted store; any other
failure as an unclear error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "CLI": "tests/test_bad_inputs.py::test_bad_input_gets_its_message_and_changes_nothing",
    "HTTP": "tests/test_api_hardening.py::test_bad_input_through_the_upload",
}
KILL9 = "tests/test_kill9.py"


def _pytest(target: str, junit: Path) -> list[ET.Element]:
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target, f"--junitxml={junit}",
                    "-o", "junit_logging=system-out", "-s"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return list(ET.parse(junit).getroot().iter("testcase"))


def bad_inputs(cases: list[ET.Element]) -> dict[str, int]:
    tried = clear = corrupted = 0
    for case in cases:
        tried += 1
        failure = case.find("failure")
        if failure is None and case.find("error") is None:
            clear += 1
        elif failure is not None and "STORE CHANGED" in (failure.get("message", "") + (failure.text or "")):
            corrupted += 1
    return {"tried": tried, "clear_errors": clear, "corrupted_stores": corrupted}


def kill9(cases: list[ET.Element]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for case in cases:
        for line in "\n".join(e.text or "" for e in case.iter("system-out")).splitlines():
            found = re.match(r"KILL9 (\w+) run \d+: killed=(\w+) consistent=(\w+)", line)
            if found:
                row = out.setdefault(found.group(1), {"runs": 0, "killed": 0, "consistent": 0})
                row["runs"] += 1
                row["killed"] += found.group(2) == "True"
                row["consistent"] += found.group(3) == "True"
        if case.find("failure") is not None or case.find("error") is not None:
            out.setdefault(case.get("name", "?"), {"runs": 0, "killed": 0, "consistent": 0})["failed"] = 1
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        bad = {where: bad_inputs(_pytest(target, Path(tmp) / f"{where}.xml")) for where, target in GROUPS.items()}
        kills = {} if "--no-kill9" in sys.argv else kill9(_pytest(KILL9, Path(tmp) / "kill9.xml"))
    print("| bad inputs | tried | clear errors | corrupted stores |\n|---|---:|---:|---:|")
    for where, row in bad.items():
        print(f"| {where} | {row['tried']} | {row['clear_errors']} | {row['corrupted_stores']} |")
    print("\n| kill -9 during | runs | killed mid-run | consistent after |\n|---|---:|---:|---:|")
    for what, row in kills.items():
        print(f"| {what} | {row['runs']} | {row['killed']} | {row['consistent']} |")
    print(json.dumps({"bad_inputs": bad, "kill9": kills}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
