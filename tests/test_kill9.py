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
import shutil
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


def start(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PMATCH_HOME": str(home), "PMATCH_VECTOR_CACHE": str(home.parent / "vectors.sqlite"),
           **(env or {})}
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


def paused_at(home: Path, point: str, *args: str) -> tuple[subprocess.Popen[bytes], bool]:
    """Start the command with ``PMATCH_TEST_PAUSE_AT=point`` (``matcher.pause_points``) and wait until it stops there
    or ends: (the process, whether it is stopped at the point)."""
    marker = home / "indexes" / f".paused-{point}"
    proc = start(home, *args, env={"PMATCH_TEST_PAUSE_AT": point})
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc, marker.exists() and proc.poll() is None


def kill_at_point(home: Path, point: str, *args: str) -> bool:
    """Run the command, SIGKILL it once it stops at ``point``; True if it reached the point (a command that ends
    without reaching it is not killed)."""
    marker = home / "indexes" / f".paused-{point}"
    proc, reached = paused_at(home, point, *args)
    if reached:
        os.kill(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.communicate(timeout=600)
    marker.unlink(missing_ok=True)
    return reached


def orphans(home: Path) -> list[str]:
    """Segments in ``segments/`` that no snapshot folder names."""
    root = home / "indexes" / "patents"
    named = {seg["name"] for snap in root.iterdir() if (snap / "manifest.json").is_file()
             for seg in json.loads((snap / "manifest.json").read_text("utf-8"))["segments"]}
    return sorted(p.name for p in (root / "segments").iterdir() if p.name not in named)


def top_ids(home: Path, queries: tuple[str, ...] = ("电池", "battery", "图像")) -> tuple[int, list[list[str]]]:
    """(served doc count, top-5 BM25 ids per query) of the served snapshot, opened as a server would."""
    from matcher.search import Searcher
    from matcher.workspace import Workspace

    searcher = Searcher(Workspace(home))
    try:
        count = searcher.snapshot("patents").manifest.doc_count
        return count, [[r.id for r in searcher.search_patents(q, 5, mode="bm25")] for q in queries]
    finally:
        searcher.close()


@pytest.mark.parametrize("job", ["flush", "merge"])
def test_kill_during_flush_or_merge_keeps_the_served_snapshot(tmp_path: Path, records: list[Patent], job: str
                                                              ) -> None:
    """Killed at seeded random named points of a flush (a new segment of 1,500 records) or of a merge of two
    segments: after its files are written, after the segment is placed, after the snapshot folder is written
    (CURRENT not yet replaced), after CURRENT is replaced. The served snapshot stays complete and answers as before
    (or is the new one, complete, when CURRENT was replaced); the next flush or merge publishes and prunes what the
    killed one left (``.building-*`` folders, segments no snapshot names)."""
    from matcher.pause_points import POINTS

    rng = random.Random(23 if job == "flush" else 29)
    base = write_records(tmp_path / "base.jsonl", records[:1500])
    more = write_records(tmp_path / "more.jsonl", records[1500:3000])
    bm25 = ("index", "build", "--kind", "patents", "--dense-model", "none")
    command = (*bm25, "--merge") if job == "merge" else bm25
    seed = tmp_path / "seed"
    run(seed, "ingest", "patents", str(base))
    first = store_state(seed)[1]
    run(seed, *bm25)
    run(seed, "ingest", "patents", str(more), "--no-index")
    total = store_state(seed)[1]  # 3,000 less the sample's exact duplicates
    if job == "merge":
        run(seed, *bm25)  # two segments to merge
    points = rng.sample(POINTS, len(POINTS))
    killed, left = 0, 0
    for i in range(RUNS):
        point = points[i % len(points)]
        home = tmp_path / f"{job}{i}"
        shutil.copytree(seed, home)
        pointer = home / "indexes" / "patents" / "CURRENT"
        served, before = pointer.read_text(), top_ids(home)
        assert before[0] == (total if job == "merge" else first)
        reached = kill_at_point(home, point, *command)
        assert reached, f"{job} finished without reaching {point}"
        killed += 1
        assert snapshot_ok(home) is True  # CURRENT names a complete snapshot: no half-written segment is served
        assert store_state(home)[0] == "ok"
        after = top_ids(home)
        if point == "published":  # CURRENT was replaced just before the kill: the new snapshot, complete
            assert pointer.read_text() != served
            assert after[0] == total
        else:  # the snapshot served before the kill, answering as it did
            assert pointer.read_text() == served and after == before, (point, before, after)
        leftovers = hidden(home) + orphans(home)
        left += bool(leftovers)
        run(home, *command)  # the next flush or merge publishes (or finds the killed one's publish complete)
        assert snapshot_ok(home) is True
        current = json.loads((home / "indexes" / "patents" / pointer.read_text().strip() / "manifest.json")
                             .read_text("utf-8"))
        assert current["doc_count"] == total and top_ids(home)[0] == total
        if job == "merge":
            assert len(current["segments"]) == 1, current["segments"]
        remaining = hidden(home) + orphans(home)
        if point != "published":  # a publish ran, so what the killed process left is gone
            assert pointer.read_text() != served and remaining == [], (point, leftovers, remaining)
        else:
            assert hidden(home) == [], (point, leftovers, remaining)
        print(f"KILL9 {job} run {i}: killed at {point}, left {leftovers}, after the next {job}: {remaining}")
    assert killed == RUNS
    assert left >= 1 or "segment-saved" not in points[:RUNS], "no kill left anything to prune"


def test_a_flush_during_a_merge_keeps_the_merged_segment(tmp_path: Path, records: list[Patent]) -> None:
    """A merge builds outside the build lock, and every publish drops the segments no snapshot names. Held just after
    placing its merged segment in ``segments/``, the merge must still hold the build lock there (a flush waits),
    or the flush's publish would drop the merged segment and the merge then publish a snapshot naming a missing
    segment (what happened before the merge placed its segment under the lock)."""
    import threading

    from matcher.flush import FlushResult, update_snapshot
    from matcher.workspace import Workspace

    bm25 = ("index", "build", "--kind", "patents", "--dense-model", "none")
    home = tmp_path / "race"
    run(home, "ingest", "patents", str(write_records(tmp_path / "a.jsonl", records[:1000])))
    run(home, *bm25)
    run(home, "ingest", "patents", str(write_records(tmp_path / "b.jsonl", records[1000:1500])))  # a second segment
    marker = home / "indexes" / ".paused-segment-placed"
    merge, stopped = paused_at(home, "segment-placed", *bm25, "--merge")
    assert stopped, "the merge did not stop after placing its segment"
    run(home, "ingest", "patents", str(write_records(tmp_path / "c.jsonl", records[1500:1800])), "--no-index")
    ws = Workspace(home)
    flushed: list[FlushResult] = []
    flush = threading.Thread(target=lambda: flushed.append(update_snapshot(ws, "patents")))
    flush.start()
    flush.join(2.0)
    waited = flush.is_alive()  # the merge holds the build lock while its segment is placed but unpublished
    marker.unlink()
    _, err = merge.communicate(timeout=600)
    flush.join(600)
    assert merge.returncode == 0, err.decode()
    assert waited and flushed and flushed[0].state == "published"
    assert snapshot_ok(home) is True
    manifest = ws.current_manifest("patents")
    assert manifest is not None and [s.origin for s in manifest.segments] == ["merge", "flush"]
    assert manifest.doc_count == store_state(home)[1]
    assert orphans(home) == [] and hidden(home) == []
    count, ids = top_ids(home)
    assert count == manifest.doc_count and ids[0]  # 电池 finds batteries


def test_a_flush_during_a_full_rebuild_publishes_and_is_kept(tmp_path: Path, records: list[Patent]) -> None:
    """``pmatch index build --full`` builds outside the build lock: held after saving its segment, it lets a flush
    publish a write made meanwhile (the flush does not wait for the rebuild); when it goes on, its snapshot holds
    that write too (a flush over the rebuilt segment, published as one step), so nothing searchable is lost."""
    import threading

    from matcher.flush import FlushResult, update_snapshot
    from matcher.workspace import Workspace

    bm25 = ("index", "build", "--kind", "patents", "--dense-model", "none")
    home = tmp_path / "full"
    run(home, "ingest", "patents", str(write_records(tmp_path / "a.jsonl", records[:1200])))
    marker = home / "indexes" / ".paused-segment-saved"
    full, stopped = paused_at(home, "segment-saved", *bm25, "--full")
    assert stopped, "the rebuild did not stop after saving its segment"
    late = records[1200:1260]
    run(home, "ingest", "patents", str(write_records(tmp_path / "b.jsonl", late)), "--no-index")
    ws = Workspace(home)
    flushed: list[FlushResult] = []
    flush = threading.Thread(target=lambda: flushed.append(update_snapshot(ws, "patents")))
    flush.start()
    flush.join(60)
    done_first = not flush.is_alive()  # the flush did not wait for the rebuild
    marker.unlink()
    _, err = full.communicate(timeout=600)
    flush.join(600)
    assert full.returncode == 0, err.decode()
    assert done_first and flushed and flushed[0].state == "published"
    assert snapshot_ok(home) is True and hidden(home) == [] and orphans(home) == []
    manifest = ws.current_manifest("patents")
    total = store_state(home)[1]
    assert manifest is not None and manifest.doc_count == total
    assert [s.origin for s in manifest.segments] == ["full", "flush"]  # the rebuild, then what came meanwhile
    from matcher.search import Searcher

    searcher = Searcher(Workspace(home))
    try:
        found = {h.id for r in late[:5] for h in searcher.search_patents(r.title, 10, mode="bm25")}
        assert found & {r.id for r in late[:5]}, found  # the write made during the rebuild is searchable
    finally:
        searcher.close()
