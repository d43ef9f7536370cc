"""kill -9 at random points of ``pmatch ingest`` and ``pmatch index build``: the store and ``CURRENT`` stay consistent.

Each test first runs the command to the end once (which also gives its duration on this machine), then kills it
with SIGKILL at seeded random points inside that duration, 3 times. After every kill: ``PRAGMA integrity_check``
is ok, a batch landed whole or not at all, ``CURRENT`` (if any) names a complete snapshot, and the next run of
the command succeeds and leaves no ``.building-*`` folder behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from matcher.records import Patent

pytestmark = pytest.mark.e2e  # kills real CLI subprocesses mid-write

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("PMATCH_KILL9_RUNS", "3"))  # more for a closing note (tests/reliability_table.py)


def start(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PMATCH_HOME": str(home), "PMATCH_VECTOR_CACHE": str(home.parent / "vectors.sqlite")}
    return subprocess.Popen([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(home: Path, *args: str) -> float:
    began = time.perf_counter()
    proc = start(home, *args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - began


def kill_at(home: Path, delay: float, *args: str, after: Callable[[], bool] | None = None) -> bool:
    """Start the command, SIGKILL it ``delay`` seconds after it starts (or after ``after()`` first holds); True if
    it was still running then."""
    proc = start(home, *args)
    while after is not None and not after() and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(delay)
    running = proc.poll() is None
    if running:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=600)
    return running


def store_state(home: Path) -> tuple[str, int, int, int]:
    """(integrity_check, patents, batches, data_version)."""
    db = sqlite3.connect(home / "store.sqlite")
    try:
        return (db.execute("PRAGMA integrity_check").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM patents").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM ingest_batches").fetchone()[0],
                int(db.execute("SELECT value FROM meta WHERE key='data_version'").fetchone()[0]))
    finally:
        db.close()


def write_records(path: Path, records: list[Patent]) -> Path:
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def records(sample_patents: list[Patent]) -> list[Patent]:
    return sample_patents[:4000]


def test_kill_during_ingest_lands_whole_or_not_at_all(tmp_path: Path, records: list[Patent]) -> None:
    rng = random.Random(11)
    seed = write_records(tmp_path / "seed.jsonl", records[:100])
    batch = write_records(tmp_path / "batch.jsonl", records[100:])
    full = tmp_path / "full"
    run(full, "ingest", "patents", str(seed))
    duration = run(full, "ingest", "patents", str(batch))
    complete = store_state(full)
    killed = 0
    for i in range(RUNS):
        home = tmp_path / f"k{i}"
        run(home, "ingest", "patents", str(seed))
        before = store_state(home)
        # runs 0 and 1 die while the batch is being written (the WAL has grown), run 2 at any point
        delay = rng.uniform(0.0, 0.2) if i < 2 else rng.uniform(0.3, 0.97) * duration
        wal = home / "store.sqlite-wal"
        writing = (lambda wal=wal: wal.exists() and wal.stat().st_size > 64 * 1024) if i < 2 else None
        died = kill_at(home, delay, "ingest", "patents", str(batch), after=writing)
        killed += died
        after = store_state(home)
        consistent = after[0] == "ok" and after[1:] in (before[1:], (complete[1], before[2] + 1, complete[3]))
        print(f"KILL9 ingest run {i}: killed={died} consistent={consistent} after {delay:.2f} s of {duration:.2f} s:"
              f" {before[1:]} -> {after[1:]}")
        assert after[0] == "ok"
        assert after[1:] in (before[1:], (complete[1], before[2] + 1, complete[3])), (before, after, complete)
        run(home, "ingest", "patents", str(batch))  # the store takes the batch after the kill
        assert store_state(home)[1] == complete[1]
    assert killed >= 1, "every run finished before its kill: the window is wrong"


def snapshot_ok(home: Path) -> bool | None:
    """None without CURRENT, else whether CURRENT names a complete snapshot."""
    root = home / "indexes" / "patents"
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None
    snapshot = root / pointer.read_text("utf-8").strip()
    manifest = json.loads((snapshot / "manifest.json").read_text("utf-8"))
    segments = [root / "segments" / seg["name"] for seg in manifest["segments"]]
    return manifest["kind"] == "patents" and bool(segments) and all(
        (seg / "bm25" / "manifest.json").is_file() and (seg / "facets").is_dir() and (seg / "stamps.npy").is_file()
        for seg in segments)


def hidden(home: Path) -> list[str]:
    root = home / "indexes" / "patents"
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".")) if root.is_dir() else []


def test_kill_during_index_build_keeps_current_and_prunes_leftovers(tmp_path: Path, records: list[Patent]) -> None:
    """Killed while the snapshot folder is being filled (BM25 and facets saved, the dense model embedding), a
    build leaves a ``.building-*`` folder; CURRENT still names the served snapshot, and the next build removes
    the leftover."""
    rng = random.Random(7)
    data = write_records(tmp_path / "p.jsonl", records[:2000])
    build = ("index", "build", "--kind", "patents")  # the configured dense model too: the slow part
    bm25_only = (*build, "--dense-model", "none")
    killed, left = 0, 0
    for i in range(RUNS):
        home = tmp_path / f"b{i}"
        run(home, "ingest", "patents", str(data))
        if i == 1:  # one run kills a rebuild over a served snapshot
            run(home, *bm25_only)
        served = snapshot_ok(home)
        delay = rng.uniform(0.0, 1.5)
        died = kill_at(home, delay, *build, after=lambda home=home: any(
            n.startswith(".building-") for n in hidden(home)))
        killed += died
        state = snapshot_ok(home)
        consistent = state in (None, True) and (served is None or state is True) and store_state(home)[0] == "ok"
        print(f"KILL9 build run {i}: killed={died} consistent={consistent}")
        assert state in (None, True) and (served is None or state is True)
        assert store_state(home)[0] == "ok"
        leftovers = hidden(home)
        left += bool(leftovers)
        run(home, *bm25_only)
        assert snapshot_ok(home) is True
        remaining = hidden(home)
        assert remaining == [], (delay, leftovers, remaining)
        print(f"build run {i}: killed {delay:.2f} s into the snapshot folder, left {leftovers}, pruned by the next")
    assert killed >= 1 and left >= 1, "no kill left a folder to prune: the window is wrong"


@pytest.mark.e2e
@pytest.mark.skip(reason="its kill window misses on a quiet machine (every flush finished before the kill in a "
                         "fresh-clone run); issue 17 stays open until it targets the flush itself")
def test_kill_during_flush_or_merge_keeps_the_served_snapshot(tmp_path: Path, records: list[Patent]) -> None:
    """Killed at random points of a flush (a new segment of 1,500 records, deletions masked) or of a merge, the
    served snapshot stays complete and searchable with what it held; the next flush or merge publishes and prunes
    what the killed one left."""
    from matcher.search import Searcher
    from matcher.workspace import Workspace

    rng = random.Random(23)
    base = write_records(tmp_path / "base.jsonl", records[:1500])
    more = write_records(tmp_path / "more.jsonl", records[1500:3000])
    bm25 = ("index", "build", "--kind", "patents", "--dense-model", "none")
    killed = 0
    for i in range(RUNS):
        home = tmp_path / f"f{i}"
        run(home, "ingest", "patents", str(base))
        first = store_state(home)[1]
        run(home, *bm25)
        run(home, "ingest", "patents", str(more), "--no-index")
        merging = i == RUNS - 1
        if merging:  # the last run kills a merge of two segments instead
            run(home, *bm25)
        served = (home / "indexes" / "patents" / "CURRENT").read_text()
        total = store_state(home)[1]  # 3,000 less the sample's exact duplicates
        job = (*bm25, "--merge") if merging else bm25
        killed += kill_at(home, rng.uniform(0.0, 1.2), *job, after=lambda home=home: any(
            n.startswith(".building-") for n in hidden(home)))
        assert snapshot_ok(home) is True
        now = (home / "indexes" / "patents" / "CURRENT").read_text()
        searcher = Searcher(Workspace(home))
        try:
            snap = searcher.snapshot("patents")
            assert snap.manifest.doc_count in (first, total) and (now == served or snap.manifest.doc_count == total)
            assert searcher.search_patents("电池", 5, mode="bm25")
        finally:
            searcher.close()
        run(home, *job)
        assert snapshot_ok(home) is True and hidden(home) == []
        manifest = json.loads((home / "indexes" / "patents" / now.strip() / "manifest.json").read_text()) \
            if (home / "indexes" / "patents" / now.strip()).is_dir() else None
        current = json.loads((home / "indexes" / "patents" / (home / "indexes" / "patents" / "CURRENT").read_text()
                              / "manifest.json").read_text())
        assert current["doc_count"] == total and (not merging or len(current["segments"]) == 1), (manifest, current)
        used = {s["name"] for s in current["segments"]}
        assert used <= {p.name for p in (home / "indexes" / "patents" / "segments").iterdir()}
        print(f"flush/merge run {i}: killed={killed}")
    assert killed >= 1, "every run finished before its kill: the window is wrong"
