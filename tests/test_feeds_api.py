"""Feeds, saved searches, the licence-request endpoint and the standing worker over HTTP (in-process client, the
service's own background worker, static-64 model, a slice of the bundled Zhibei data)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_server import RANKER
from fastapi.testclient import TestClient
from test_licence import DECLARED, pdf_text, squeeze
from test_standing import AS_OF, ENTERPRISE, demands_with_enterprise, make_home, offers

from api.http.app import create_app
from api.http.keys import keys_create
from api.http.settings import ServiceSettings
from matcher.config import RankerConfig
from matcher.records import Demand, Patent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sample_patents: list[Patent],
           sample_demands: list[Demand]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    ws = make_home(tmp_path_factory.mktemp("feeds"), [*offers(sample_patents, 30), DECLARED],
                   demands_with_enterprise(sample_demands, 90))
    key = keys_create(ws.home, "tests")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PMATCH_STANDING_AS_OF", AS_OF.isoformat())
        mp.setenv("PMATCH_STANDING_EXPLAIN", "0")
        mp.setenv("PMATCH_STANDING_CAP_PER_ENTERPRISE", "1000")
        mp.setenv("PMATCH_STANDING_MIN_RELEVANCE", "0")  # bookkeeping, not ranking: see test_standing.settings
        mp.setenv("PMATCH_STANDING_PAIR_MODEL", "0")
        settings = ServiceSettings(ranker=RankerConfig(**RANKER))
        with TestClient(create_app(ws, settings), raise_server_exceptions=False) as client:
            deadline = time.monotonic() + 300  # the service's worker drains what the writes left pending
            while client.get("/v1/standing").json()["pending"]:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            yield client, {"Authorization": f"Bearer {key}"}


def test_feed_pages_over_http(served: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = served
    status = client.get("/v1/standing").json()
    assert status["background"] and status["last_run"]["processed"] > 0
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/feeds/enterprise/{ENTERPRISE}", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["event_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert len(seen) > 5 and seen == sorted(set(seen))
    again = client.get(f"/v1/feeds/enterprise/{ENTERPRISE}", params={"cursor": cursor}).json()
    assert again["items"] == [] and again["next_cursor"] == cursor
    wrong = client.get("/v1/feeds/enterprise/别家公司", params={"cursor": cursor, "lang": "en"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_cursor"
    assert "another feed" in wrong.json()["error"]["message"]


def test_saved_search_over_http(served: tuple[TestClient, dict[str, str]], sample_patents: list[Patent]) -> None:
    client, auth = served
    body = {"owner_type": "enterprise", "owner": ENTERPRISE, "name": "机器视觉", "query": "机器视觉 尺寸 测量"}
    assert client.post("/v1/saved-searches", json=body).status_code == 401
    made = client.post("/v1/saved-searches", json=body, headers=auth)
    assert made.status_code == 200, made.text
    new = [p.model_dump(mode="json", exclude_defaults=True) for p in offers(sample_patents, 20, skip=30)]
    wrote = client.post("/v1/ingest/patents", params={"wait": "true"}, json={"records": new}, headers=auth)
    assert wrote.status_code == 200 and wrote.json()["reindex"]["state"] == "published", wrote.text
    deadline = time.monotonic() + 300
    while client.get("/v1/standing").json()["pending"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    items: list[dict] = []
    params: dict[str, object] = {"limit": 500, "include_capped": "true"}
    while True:
        page = client.get(f"/v1/feeds/enterprise/{ENTERPRISE}", params=params).json()
        items += page["items"]
        params["cursor"] = page["next_cursor"]
        if not page["has_more"]:
            break
    hits = [i for i in items if i["saved_search"]]
    assert hits and {i["patent"]["id"] for i in hits} <= {p["id"] for p in new}
    assert client.delete(f"/v1/saved-searches/{made.json()['id']}", headers=auth).status_code == 200


def test_licence_request_endpoint(served: tuple[TestClient, dict[str, str]], tmp_path: Path) -> None:
    client, _ = served
    body = {"patent_id": DECLARED.id, "enterprise": {"name": ENTERPRISE, "phone": "0574-87654321"}, "format": "pdf"}
    got = client.post("/v1/licence-requests", json=body)
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    (tmp_path / "n.pdf").write_bytes(got.content)
    text = squeeze(pdf_text(tmp_path / "n.pdf"))
    assert squeeze(DECLARED.price or "") in text and squeeze(DECLARED.licence_term or "") in text
    refused = client.post("/v1/licence-requests", json={**body, "patent_id": "ZB-O1-0000"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "no_open_licence"
    assert "没有开放许可声明" in refused.json()["error"]["message"]
    missing = client.post("/v1/licence-requests", json={**body, "patent_id": "NO-SUCH"})
    assert missing.status_code == 404


def test_feed_section_on_the_page(served: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = served
    first = client.get("/feeds", params={"owner_type": "enterprise", "name": ENTERPRISE})
    assert first.status_code == 200 and "匹配动态" in first.text
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>", first.text)
    assert len(rows) == 25
    more = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert more is not None
    second = client.get(html.unescape(more.group(1)))
    assert second.status_code == 200
    later = re.findall(r"<tr>\s*<td>(\d+)</td>", second.text)
    assert later and int(later[0]) > int(rows[-1])  # the next page starts after the last row shown
    assert ENTERPRISE in client.get("/feeds").text  # the list of feeds with matches
    english = client.get("/feeds", params={"name": ENTERPRISE, "lang": "en"})
    assert "Match feed of" in english.text
    bad = client.get("/feeds", params={"name": ENTERPRISE, "cursor": "x"})
    assert bad.status_code == 422
