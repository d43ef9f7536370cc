"""A write over HTTP becomes searchable on the full bundled sample, and is read by the standing matcher.

The server rebuilds in a child process, and ``BM25Index.build`` tokenizes with a process pool once a kind has
``PARALLEL_MIN_DOCS`` texts. Wave 1's daemonic build child could not start that pool ("daemonic processes are not
allowed to have children"), so every server-side rebuild failed above 20,000 records while every test on a small
corpus passed. This test runs on all 20k+ bundled patents, which is above the threshold.

The server's standing worker then matches the new offers against the active demands with its default settings,
the pair model (multilingual-e5-small) included, in the server process: an offer written as the answer to one
demand reaches that demand's enterprise feed, scored by its pair confidence.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from api_server import running_server
from test_standing import AS_OF, ENTERPRISE, demands_with_enterprise

from indexes.term_counts import PARALLEL_MIN_DOCS
from matcher.records import Demand, Patent

pytestmark = [pytest.mark.data, pytest.mark.model]

NEW = {
    "id": "CN999000001A",
    "title": "一种用于钒液流储能电池的石墨毡电极活化方法",
    "abstract": "本发明公开了一种钒液流储能电池石墨毡电极的活化方法，通过电化学氧化在石墨毡表面引入含氧官能团。",
    "language": "zh",
}


def test_http_write_is_searchable_above_the_parallel_build_threshold(
        tmp_path: Path, sample_patents: list[Patent], sample_demands: list[Demand]) -> None:
    assert len(sample_patents) >= PARALLEL_MIN_DOCS  # the size where the build switches to a process pool
    demands = demands_with_enterprise(sample_demands, 50)  # active on AS_OF; every third is ENTERPRISE's
    env = {"PMATCH_STANDING_AS_OF": AS_OF.isoformat(), "PMATCH_STANDING_EXPLAIN": "0"}
    with running_server(tmp_path, sample_patents, demands, env, backlog=False) as (server, key), \
            httpx.Client(base_url=server.url, timeout=600) as client:
        auth = {"Authorization": f"Bearer {key}"}
        stored = client.get("/v1/stats").json()["records"]["patents"]
        assert stored >= PARALLEL_MIN_DOCS
        written = client.post("/v1/ingest/patents", params={"wait": "true"}, json={"records": [NEW]}, headers=auth)
        assert written.status_code == 200, written.text
        assert written.json()["reindex"]["state"] == "published", written.text
        hits = client.get("/v1/search/patents", params={"q": "钒液流 石墨毡 活化", "mode": "bm25", "limit": 5})
        assert hits.status_code == 200, hits.text
        assert hits.json()["results"][0]["id"] == NEW["id"]
        status = client.get("/v1/index/status").json()
        assert status["builds"]["patents"]["last_error"] is None, status

        need = next(d for d in demands if d.enterprise == ENTERPRISE and len(d.description) > 40)
        answer = {"id": "ZB-O9-9001", "title": need.title, "abstract": need.description, "language": "zh"}
        written = client.post("/v1/ingest/patents", params={"wait": "true"}, json={"records": [answer]}, headers=auth)
        assert written.status_code == 200 and written.json()["reindex"]["state"] == "published", written.text
        deadline = time.monotonic() + 600  # the worker loads e5 and reads the pairs left after the other floors
        while (standing := client.get("/v1/standing").json())["pending"]:
            assert time.monotonic() < deadline, standing
            time.sleep(1)
        assert standing["last_error"] is None and standing["last_run"]["processed"] >= 1, standing
        feed = client.get(f"/v1/feeds/enterprise/{ENTERPRISE}", params={"limit": 200}).json()["items"]
        mine = [e for e in feed if e["patent"]["id"] == answer["id"]]
        assert [e["demand"]["id"] for e in mine if e["demand"]] == [need.id], feed
        assert mine[0]["evidence"] == "pair_confidence" and 0.0 < mine[0]["score"] <= 1.0
        assert mine[0]["explanation"]["pair_confidence"] == pytest.approx(mine[0]["score"], abs=1e-5)


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
