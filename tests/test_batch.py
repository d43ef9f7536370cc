"""Partitioned, resumable batch jobs on the local engine (matcher/jobs.py, matcher/batch.py, matcher/engine.py), and
the ``--engine`` options' errors. The Ray engine itself: tests/test_ray_engine.py."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from test_shortlist import chain_corpus
from typer.testing import CliRunner

import matcher.batch
import matcher.engine
from api.cli.main import app
from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache, text_hash
from matcher.batch import EmbedWorker, ScoreWorker, embed_job, push_job, shortlist_job
from matcher.chains import load_chain, shipped_chains
from matcher.config import RankerConfig
from matcher.engine import EngineSpec
from matcher.jobs import JobMismatch, PartitionJob
from matcher.push import PushOptions, build_push
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.shortlist import ShortlistOptions, build_shortlist
from matcher.workspace import Workspace

LOCAL = EngineSpec("local")


def row_keys(rows: list[dict]) -> list[tuple[str, str, str, float]]:
    return [(r.get("segment_id", ""), r["demand_id"], r["patent_id"], r["score"]) for r in rows]


# --- the job folder ---------------------------------------------------------------------------------------
def test_a_job_reopens_with_its_plan_and_skips_finished_partitions(tmp_path: Path) -> None:
    args = {"job": "t", "n": 1}
    job = PartitionJob.open(tmp_path, "t", args, [[1, 2], [3], [4, 5]])
    assert job.pending() == [0, 1, 2]
    job.write(0, {"sum": 3}, "local:1")
    job.write(1, np.arange(3, dtype=np.float32), "local:1")
    again = PartitionJob.open(tmp_path, "t", args, [["a plan made later is ignored"]])
    assert again.plan == [[1, 2], [3], [4, 5]]
    assert again.resumed == [0, 1] and again.pending() == [2]
    assert again.read(0) == {"sum": 3}
    np.testing.assert_array_equal(again.read(1), np.arange(3, dtype=np.float32))
    with pytest.raises(RuntimeError, match="not done"):
        again.results()
    again.write(2, [9], "local:2")
    again.write(2, ["a retried task's second delivery"], "local:3")  # the first result stands
    assert again.results()[2] == [9] and again.summary()["computed"] == 1
    other = PartitionJob.open(tmp_path, "t", {"job": "t", "n": 2}, [[0]])
    assert other.path != again.path and other.pending() == [0]
    again.finish()
    assert not again.path.exists()


def test_a_hand_edited_job_folder_is_refused(tmp_path: Path) -> None:
    job = PartitionJob.open(tmp_path, "t", {"a": 1}, [[1]])
    manifest = job.path / "manifest.json"
    manifest.write_text(manifest.read_text("utf-8").replace('"a": 1', '"a": 2'), "utf-8")
    with pytest.raises(JobMismatch):
        PartitionJob.open(tmp_path, "t", {"a": 1}, [[1]])


# --- embedding --------------------------------------------------------------------------------------------
def test_embed_job_resumes_after_a_crash_and_fills_the_cache(tmp_path: Path, sample_patents: list[Patent],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "vectors.sqlite"
    monkeypatch.setenv("PMATCH_VECTOR_CACHE", str(cache))
    ws = Workspace(tmp_path / "home")
    texts = list(dict.fromkeys(p.title + "\n" + p.abstract for p in sample_patents[:320]))[:300]
    calls: list[int] = []
    real = EmbedWorker.__call__

    def dies_on_the_third(self: EmbedWorker, batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the driver were stopped here
        return real(self, batch)

    monkeypatch.setattr(EmbedWorker, "__call__", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        embed_job(ws, "static-64", texts, LOCAL, {"test": 1}, partition_size=64)
    monkeypatch.setattr(EmbedWorker, "__call__", real)
    report = embed_job(ws, "static-64", texts, LOCAL, {"test": 1}, partition_size=64)
    assert report.job["partitions"] == 5 and report.job["resumed"] == 2 and report.job["computed"] == 3
    assert report.details["embedded"] == 300 and not list((ws.home / "jobs").iterdir())  # folder removed
    embedder = load_embedder("static-64")
    expected = embedder.encode_documents(texts)
    with VectorCache(cache) as vc:
        have = vc.get_many(embedder.fingerprint, [text_hash(t) for t in texts])
    got = np.stack([have[text_hash(t)] for t in texts]).astype(np.float32)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # the cache keeps float16
    again = embed_job(ws, "static-64", texts, LOCAL, {"test": 1})
    assert again.details["cached"] == 300 and again.details["embedded"] == 0 and again.job["partitions"] == 0


# --- shortlist and push on the local engine ---------------------------------------------------------------
@pytest.fixture(scope="module")
def searcher(indexed_workspace, sample_patents: list[Patent], sample_demands: list[Demand]) -> Searcher:
    ws = indexed_workspace("chains", *chain_corpus(sample_patents, sample_demands))
    s = Searcher(ws, RankerConfig(dense_model="static-64", candidates=50))
    yield s
    s.close()


def test_partitioned_shortlist_equals_the_plain_one_and_resumes(searcher: Searcher,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    chain = load_chain(sorted(shipped_chains())[0])
    # equality and resume, not quality: the evidence floors and the pair model off, so the tiny corpus gives rows
    options = ShortlistOptions(per_demand=3, per_patent=2, explain=False, min_relevance=None, min_similarity=None,
                               min_coverage=None, min_topic_coverage=None, pair_model=False)
    plain = build_shortlist(searcher, chain, options)
    calls: list[int] = []
    real = ScoreWorker.__call__

    def dies_on_the_third(self: ScoreWorker, positions: list[int]) -> list[dict]:
        calls.append(len(positions))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, positions)

    monkeypatch.setattr(ScoreWorker, "__call__", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        shortlist_job(searcher, chain, options, LOCAL, partition_size=4)
    monkeypatch.setattr(ScoreWorker, "__call__", real)
    resumed, report = shortlist_job(searcher, chain, options, LOCAL, partition_size=4)
    assert report.job["resumed"] == 2 and report.job["computed"] == report.job["partitions"] - 2 >= 1
    assert row_keys(resumed.rows) == row_keys(plain.rows) and plain.rows
    assert resumed.summary["candidate_pairs"] == plain.summary["candidate_pairs"]
    assert resumed.summary["total_score"] == plain.summary["total_score"]


def test_partitioned_push_equals_the_plain_one(searcher: Searcher) -> None:
    options = PushOptions(k=10, per_enterprise=3, explain=False, pair_model=False)  # equality, not quality
    plain = build_push(searcher, "NVIDIA", None, options)
    batched, report = push_job(searcher, "NVIDIA", None, options, LOCAL, partition_size=7)
    assert report.job["partitions"] == -(-len(plain.portfolio) // 7) and report.job["computed"] > 1
    assert [(e.enterprise, e.score) for e in batched.enterprises] == \
        [(e.enterprise, e.score) for e in plain.enterprises]
    assert [(r["demand_id"], r["patent_id"], r["fit"]) for r in batched.rows] == \
        [(r["demand_id"], r["patent_id"], r["fit"]) for r in plain.rows]


# --- the --engine options ---------------------------------------------------------------------------------
def test_engine_options_are_checked_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    chain = str(sorted(shipped_chains())[0])
    r = runner.invoke(app, ["shortlist", chain, "--engine", "spark", "--lang", "en", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "--engine must be local or ray, not spark" in r.output
    r = runner.invoke(app, ["embed", "--address", "127.0.0.1:6379", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "--address 需要同时指定 --engine ray" in r.output
    monkeypatch.setattr(matcher.engine, "ray_installed", lambda: False)
    for lang, says in (("en", "the Ray engine is not installed"), ("zh", "Ray 引擎未安装")):
        r = runner.invoke(app, ["push", "--applicant", "x", "--engine", "ray", "--lang", lang, "--home", str(tmp_path)])
        assert r.exit_code == 2 and says in r.output and "pip install '.[ray]'" in r.output


def test_an_unreachable_ray_address_fails_at_once(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    r = CliRunner().invoke(app, ["index", "build", "--engine", "ray", "--address", f"127.0.0.1:{port}",
                                 "--lang", "en", "--home", str(tmp_path)])
    assert r.exit_code == 1 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in r.output
    assert "ray start --head" in r.output and time.monotonic() - started < 10
    r = CliRunner().invoke(app, ["embed", "--engine", "ray", "--address", "nowhere", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "主机:端口" in r.output


def test_the_batch_module_keeps_ray_optional() -> None:
    """Nothing imports Ray until a job runs on it (the local engine works without the extra)."""
    source = Path(matcher.batch.__file__).read_text("utf-8") + Path(matcher.engine.__file__).read_text("utf-8")
    assert "import ray" not in source
