"""A write over HTTP becomes searchable on the full bundled sample.

The server rebuilds in a child process, and ``BM25Index.build`` tokenizes with a process pool once a kind has
``PARALLEL_MIN_DOCS`` texts. Wave 1's daemonic build child could not start that pool ("daemonic processes are not
allowed to have children"), so every server-side rebuild failed above 20,000 records while every test on a small
corpus passed. This test runs on all 20k+ bundled patents, which is above the threshold.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from api_server import running_server

from indexes.term_counts import PARALLEL_MIN_DOCS
from matcher.records import Demand, Patent

pytestmark = pytest.mark.data

NEW = {
    "id": "CN999000001A",
    "title": "一种用于钒液流储能电池的石墨毡电极活化方法",
    "abstract": "本发明公开了一种钒液流储能电池石墨毡电极的活化方法，通过电化学氧化在石墨毡表面引入含氧官能团。",
    "language": "zh",
}


def test_http_write_is_searchable_above_the_parallel_build_threshold(
        tmp_path: Path, sample_patents: list[Patent], sample_demands: list[Demand]) -> None:
    assert len(sample_patents) >= PARALLEL_MIN_DOCS  # the size where the build switches to a process pool
    with running_server(tmp_path, sample_patents, sample_demands[:50]) as (server, key), \
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


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
