"""Thread settings: environment parsing, and limits applied in a fresh process (they are process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexes.threads import THREAD_ENV, available_cpus, embed_threads, faiss_threads, thread_env

REPO = Path(__file__).resolve().parents[1]


def test_env_overrides_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMATCH_EMBED_THREADS", "3")
    assert embed_threads() == 3
    monkeypatch.delenv("PMATCH_EMBED_THREADS")
    assert embed_threads() == available_cpus() >= 1
    monkeypatch.delenv("PMATCH_FAISS_THREADS", raising=False)
    assert faiss_threads() is None
    monkeypatch.setenv("PMATCH_FAISS_THREADS", "2")
    assert faiss_threads() == 2


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_bad_thread_counts_name_the_variable(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("PMATCH_FAISS_THREADS", bad)
    with pytest.raises(ValueError, match="PMATCH_FAISS_THREADS must be a positive integer"):
        faiss_threads()
    monkeypatch.setenv("PMATCH_EMBED_THREADS", bad)
    with pytest.raises(ValueError, match="PMATCH_EMBED_THREADS"):
        embed_threads()


def test_thread_env_sets_every_count_and_keeps_the_rest() -> None:
    env = thread_env(3)
    assert set(env) == set(THREAD_ENV)
    assert all(v == "3" for k, v in env.items() if k.endswith("THREADS"))
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["TOKENIZERS_PARALLELISM"] == "false"


@pytest.mark.e2e
def test_limit_threads_applies_to_loaded_libraries() -> None:
    script = (
        "import json, faiss, numpy, torch\n"
        "from indexes.threads import limit_threads, thread_report\n"
        "limit_threads(1)\n"
        "print(json.dumps(thread_report()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          check=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["torch"] == 1 and report["faiss"] == 1
    assert report["blas"] and all(b["threads"] == 1 for b in report["blas"])
    assert report["OMP_WAIT_POLICY"] == "PASSIVE" and report["PMATCH_EMBED_THREADS"] == "1"
