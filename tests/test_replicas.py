"""Serving beyond one process: two API replicas (two ports) over one workspace are stateless readers of the same
published snapshot. A client alternating between them gets the same answers; a rebuild published once (through
the one writer) is served by both; the read replica refuses writes with ``read_replica`` and writes nothing."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
from api_server import ApiServer, build_home, corpus

from api.http.keys import keys_create
from matcher.records import Demand, Patent
from matcher.store import Store

pytestmark = pytest.mark.e2e
QUERIES = ("锂离子电池 正极材料", "graphics processor thread scheduling", "石墨烯 散热", "memory controller")


def test_two_replicas_serve_one_snapshot_and_one_writer(tmp_path: Path, sample_patents: list[Patent],
                                                        sample_demands: list[Demand],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = str(tmp_path / "vectors.sqlite")
    monkeypatch.setenv("PMATCH_VECTOR_CACHE", cache)
    indexed, spare = corpus(sample_patents)
    home = build_home(tmp_path, indexed, sample_demands[:60])
    key = keys_create(home, "tests")
    writer = ApiServer(home, tmp_path / "ranker.json", {"PMATCH_VECTOR_CACHE": cache}, key)
    try:
        reader = ApiServer(home, tmp_path / "ranker.json", {"PMATCH_VECTOR_CACHE": cache, "PMATCH_API_WRITER": "0"},
                           key)
        try:
            replicas = itertools.cycle([writer, reader])

            def search(query: str) -> tuple[str, list[tuple[str, float]]]:
                server = next(replicas)
                r = httpx.get(f"{server.url}/v1/search/patents", params={"q": query, "limit": 5}, timeout=60)
                assert r.status_code == 200, r.text
                return server.url, [(hit["id"], hit["score"]) for hit in r.json()["results"]]

            for query in QUERIES:  # each query once on each replica: the same ranked ids and scores
                (url_a, a), (url_b, b) = search(query), search(query)
                assert url_a != url_b and a == b and a

            served = {httpx.get(f"{s.url}/v1/stats", timeout=30).json()["indexes"]["patents"]["name"]
                      for s in (writer, reader)}
            assert len(served) == 1

            new = spare[0]
            marker = "钙钛矿量子点荧光防伪油墨"
            record = {"id": "REPLICA-TEST-1", "title": marker, "abstract": new.abstract}
            with Store(home / "store.sqlite") as store:
                before = store.count("patents")
            refused = httpx.post(f"{reader.url}/v1/ingest/patents", json={"records": [record]},
                                 headers={"X-API-Key": key}, params={"wait": "true"}, timeout=60)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "read_replica"
            with Store(home / "store.sqlite") as store:
                assert store.count("patents") == before  # nothing written by the read replica

            done = httpx.post(f"{writer.url}/v1/ingest/patents", json={"records": [record]},
                              headers={"X-API-Key": key}, params={"wait": "true"}, timeout=900)
            assert done.status_code == 200, done.text
            names = {httpx.get(f"{s.url}/v1/stats", timeout=30).json()["indexes"]["patents"]["name"]
                     for s in (writer, reader)}
            assert len(names) == 1 and names != served  # one new snapshot, served by both
            for _ in range(4):  # alternating: every replica finds the new record
                url, hits = search(marker)
                assert hits and hits[0][0] == "REPLICA-TEST-1", (url, hits)
        finally:
            reader.stop()
    finally:
        writer.stop()
