"""The Ray engine on real clusters: a local one (``ray.init(num_cpus=2)``) and two nodes on this machine
(``ray.cluster_utils.Cluster``), each running embedding and a shortlist on the bundled data with results identical
to the local engine; a job whose worker and then driver are killed resumes without redoing finished partitions.

One cluster per test class (class-scoped fixtures), so at most one runs at a time; marked ``ray`` and ``e2e`` (the
slow tier: ``make test-fast`` leaves them out)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache, text_hash
from matcher.batch import build_index, embed_job, push_job, shortlist_job
from matcher.chains import load_chain
from matcher.config import RankerConfig
from matcher.engine import EngineSpec
from matcher.full_build import build_snapshot
from matcher.push import PushOptions, build_push
from matcher.records import Demand, Patent
from matcher.search import Searcher
from matcher.shortlist import Shortlist, ShortlistOptions, build_shortlist
from matcher.store import Store
from matcher.texts import dense_text
from matcher.workspace import Workspace

ray = pytest.importorskip("ray")
from matcher.ray_engine import worker_env  # noqa: E402  (needs ray only at run time, but the module is Ray's)

pytestmark = [pytest.mark.ray, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
CHAIN = ROOT / "data" / "chains" / "new_energy_vehicle.yaml"
OPTIONS = ShortlistOptions(per_demand=3, per_patent=2, explain=False, pair_model=False)  # equality, not quality
RAY2 = EngineSpec("ray", workers=2)


def row_keys(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["segment_id"], r["demand_id"], r["patent_id"]) for r in rows]


def assert_same_shortlist(got: Shortlist, want: Shortlist) -> None:
    assert row_keys(got.rows) == row_keys(want.rows) and want.rows
    np.testing.assert_allclose([r["score"] for r in got.rows], [r["score"] for r in want.rows], rtol=0, atol=1e-9)
    assert got.summary["candidate_pairs"] == want.summary["candidate_pairs"]


def cached(cache: Path, model: str, texts: list[str]) -> np.ndarray:
    fp = load_embedder(model).fingerprint
    with VectorCache(cache) as vc:
        have = vc.get_many(fp, [text_hash(t) for t in texts])
    return np.stack([have[text_hash(t)] for t in texts]).astype(np.float32)


@pytest.fixture(scope="module")
def searcher(indexed_workspace, sample_patents: list[Patent], sample_demands: list[Demand]) -> Iterator[Searcher]:
    """The whole bundled sample, indexed with the small test model (the code path is the same for use-m3)."""
    ws = indexed_workspace("full-static", sample_patents, sample_demands)
    s = Searcher(ws, RankerConfig(dense_model="static-64"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def local_shortlist(searcher: Searcher) -> Shortlist:
    return build_shortlist(searcher, load_chain(CHAIN), OPTIONS)


@pytest.fixture(scope="module")
def texts(sample_patents: list[Patent]) -> list[str]:
    return list(dict.fromkeys(dense_text(p, 512) for p in sample_patents[::37]))[:500]


def _init(**kwargs: object) -> None:
    ray.init(runtime_env={"env_vars": worker_env()}, log_to_driver=False, **kwargs)


@pytest.fixture(scope="class")
def local_cluster() -> Iterator[str]:
    """``ray.init(num_cpus=2)``: a new single-machine cluster, for one test class; yields its address."""
    _init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="class")
def two_nodes() -> Iterator[object]:
    """Two Ray nodes of one CPU each on this machine (``ray.cluster_utils.Cluster``), joined by this process."""
    from ray.cluster_utils import Cluster

    # on the machine's own address: a driver does not join nodes started with node_ip_address=127.0.0.1 (it waits
    # for a node of its own address); Ray's ports listen on every interface either way
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    _init(address=nodes.address)
    yield nodes
    ray.shutdown()
    nodes.shutdown()


@pytest.mark.usefixtures("local_cluster")
class TestLocalCluster:

    def test_shortlist_on_ray_equals_local(self, searcher: Searcher, local_shortlist: Shortlist) -> None:
        got, report = shortlist_job(searcher, load_chain(CHAIN), OPTIONS, RAY2, partition_size=8)
        assert report.job["computed"] == report.job["partitions"] >= 2
        assert len(report.job["computed_by"]) == 2  # both workers took partitions
        assert_same_shortlist(got, local_shortlist)

    def test_push_on_ray_equals_local(self, searcher: Searcher) -> None:
        ids = searcher.store.ids_with_value("patents", "applicants", "NVIDIA")[:24]
        options = PushOptions(k=10, per_enterprise=3, explain=False, pair_model=False)
        want = build_push(searcher, None, ids, options)
        got, report = push_job(searcher, None, ids, options, RAY2, partition_size=6)
        assert report.job["partitions"] == 4
        assert [(e.enterprise, round(e.score, 9)) for e in got.enterprises] == \
            [(e.enterprise, round(e.score, 9)) for e in want.enterprises]
        assert [(r["demand_id"], r["patent_id"]) for r in got.rows] == [(r["demand_id"], r["patent_id"])
                                                                         for r in want.rows]

    def test_index_build_on_ray_gives_the_local_index(self, tmp_path: Path, sample_patents: list[Patent],
                                                      sample_demands: list[Demand],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        homes = []
        for name in ("local", "ray"):
            monkeypatch.setenv("PMATCH_VECTOR_CACHE", str(tmp_path / f"{name}.sqlite"))  # nothing shared
            ws = Workspace(tmp_path / name)
            with Store(ws.store_path) as store:
                store.write_batch("patents", sample_patents[:700], "test")
                store.write_batch("demands", sample_demands[:50], "test")
            if name == "local":
                build_snapshot(ws, "patents", dense_model="static-64")
            else:
                _, report = build_index(ws, "patents", "static-64", 512, RAY2)
                assert report is not None and report.details["embedded"] > 600 and report.job["computed"] >= 3
            homes.append(next((ws.index_root("patents") / "segments").iterdir()))  # the build's one segment
        a, b = homes
        for part in ("bm25", "facets"):
            files = sorted(p.relative_to(a) for p in (a / part).rglob("*") if p.is_file())
            assert files and files == sorted(p.relative_to(b) for p in (b / part).rglob("*") if p.is_file())
            for f in files:
                if f.name == "manifest.json":  # the same but for when and how fast it was built
                    timeless = [{k: v for k, v in json.loads((h / f).read_text("utf-8")).items()
                                 if k not in ("built_at", "build_seconds")} for h in (a, b)]
                    assert timeless[0] == timeless[1]
                else:
                    assert (a / f).read_bytes() == (b / f).read_bytes(), f
        va, vb = (np.load(next(h.rglob("vectors*.npy"))) for h in homes)
        assert va.shape == vb.shape
        np.testing.assert_allclose(va.astype(np.float32), vb.astype(np.float32), atol=2e-3)

    def test_killed_worker_and_driver_resume_without_redoing_partitions(
            self, local_cluster: str, tmp_path: Path, sample_patents: list[Patent]) -> None:
        """``pmatch embed --engine ray`` in a subprocess: one worker is killed (Ray restarts it and retries its
        partition), then the driver; the same command again computes only what the manifest had not recorded, and
        the cache ends as an uninterrupted run's."""
        records = sample_patents[1000:1600]
        data = tmp_path / "patents.jsonl"
        data.write_text("".join(r.model_dump_json() + "\n" for r in records), "utf-8")
        home, cache = tmp_path / "home", tmp_path / "vectors.sqlite"
        env = {**os.environ, "PMATCH_VECTOR_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "api.cli", "embed", str(data), "--kind", "patents", "--model", "use-m3",
               "--engine", "ray", "--address", local_cluster, "--partition-size", "20", "--lang", "en",
               "--home", str(home)]

        def manifest() -> dict:
            found = list((home / "jobs").glob("embed-*/manifest.json")) if (home / "jobs").is_dir() else []
            try:
                return json.loads(found[0].read_text("utf-8")) if found else {}
            except (json.JSONDecodeError, OSError):
                return {}

        def wait_for(done: int, proc: subprocess.Popen, limit: float = 240) -> dict:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                m = manifest()
                if len(m.get("done", [])) >= done:
                    return m
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.2)
            raise AssertionError(f"fewer than {done} partitions done in {limit} s")

        first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            m = wait_for(2, first)
            total = m["partitions"]
            assert total == 30
            worker = int(next(iter(m["computed_by"].values())).split(":")[1])
            os.kill(worker, signal.SIGKILL)
            m = wait_for(len(m["done"]) + 4, first)
            assert len(m["done"]) < total, "the job finished before the driver could be killed"
            first.send_signal(signal.SIGKILL)
        finally:
            if first.poll() is None:
                first.kill()
            first.communicate()
        finished_before = set(manifest()["done"])
        assert finished_before and len(finished_before) < total
        second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout + second.stderr
        counts = re.search(r"embed: (\d+) partitions, (\d+) resumed, (\d+) computed", second.stdout)
        assert counts, second.stdout
        partitions, resumed, computed = map(int, counts.groups())
        assert (partitions, resumed, computed) == (total, len(finished_before), total - len(finished_before))
        assert not list((home / "jobs").iterdir())  # delivered: the job folder is gone
        texts = list(dict.fromkeys(dense_text(r, 512) for r in records))
        want = load_embedder("use-m3").encode_documents(texts)
        np.testing.assert_allclose(cached(cache, "use-m3", texts), want, atol=2e-3)


@pytest.mark.usefixtures("two_nodes")
class TestTwoNodes:
    def test_both_nodes_embed_and_the_vectors_equal_local(self, tmp_path: Path, texts: list[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        cache = tmp_path / "vectors.sqlite"
        monkeypatch.setenv("PMATCH_VECTOR_CACHE", str(cache))
        report = embed_job(Workspace(tmp_path / "home"), "static-64", texts, RAY2, {"test": "two nodes"},
                           partition_size=50)
        assert report.job["computed"] == 10 and report.details["embedded"] == len(texts)
        assert len({by.split(":")[0] for by in report.job["computed_by"]}) == 2  # two node ids
        np.testing.assert_allclose(cached(cache, "static-64", texts), load_embedder("static-64")
                                   .encode_documents(texts), atol=2e-3)

    def test_shortlist_across_two_nodes_equals_local(self, searcher: Searcher, local_shortlist: Shortlist) -> None:
        got, report = shortlist_job(searcher, load_chain(CHAIN), OPTIONS, RAY2, partition_size=8)
        assert len({by.split(":")[0] for by in report.job["computed_by"]}) == 2
        assert_same_shortlist(got, local_shortlist)

