"""The HTTP service, on an in-process client (FastAPI's TestClient over ``create_app``, lifespan and background
rebuilds included) over a small workspace built from a slice of the bundled real data, with the tiny static-64
model. What only a real server shows (thread limits of ``pmatch serve``, the event loop answering while the thread
pool computes) runs against the session's one real uvicorn (``live_server`` in conftest.py, marked ``e2e``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import BATTERY, QUERY, RANKER, ApiServer, build_home, corpus
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.http.keys import keys_create
from api.http.settings import ServiceSettings
from matcher.config import RankerConfig
from matcher.records import Demand, Patent
from matcher.workspace import Workspace

UPLOAD_CAP_MB = 1


# --- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(sample_patents: list[Patent], sample_demands: list[Demand]) -> dict[str, Any]:
    indexed, held = corpus(sample_patents)
    return {"patents": indexed, "held": held, "demands": sample_demands[:120]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]) -> tuple[Path, str]:
    """(home, API key): a workspace with both indexes built and one key."""
    home = build_home(tmp_path_factory.mktemp("api"), data["patents"], data["demands"])
    return home, keys_create(home, "tests")


def wait_ready(client: httpx.Client, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/v1/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout} s: {client.get('/v1/ready').text}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def client(served: tuple[Path, str]) -> Iterator[TestClient]:
    settings = ServiceSettings(ranker=RankerConfig(**RANKER), max_upload_bytes=UPLOAD_CAP_MB * 2**20)
    with TestClient(create_app(Workspace(served[0]), settings), raise_server_exceptions=False,
                    headers={"Accept-Language": "en"}) as c:  # messages checked in English; zh in test_api_hardening
        wait_ready(c)
        yield c


@pytest.fixture(scope="module")
def auth(served: tuple[Path, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {served[1]}"}


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = "-") -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field", "details"}, body
    assert body["error"]["code"] == code, body
    if field != "-":
        assert body["error"]["field"] == field, body
    assert "Traceback" not in response.text
    return body["error"]


# --- operations ------------------------------------------------------------------------------------------
def test_health_ready_stats(client: httpx.Client, data: dict[str, Any]) -> None:
    assert client.get("/v1/health").json() == {"status": "ok"}
    ready = client.get("/v1/ready").json()
    assert ready["ready"] is True and ready["model"] == "static-64" and all(ready["indexes"].values())
    stats = client.get("/v1/stats").json()
    assert stats["records"]["demands"] == len(data["demands"])
    assert 0 < stats["records"]["patents"] <= len(data["patents"])  # exact duplicates are not stored
    assert stats["indexes"]["patents"]["dense_model"] == "static-64"
    assert stats["indexes"]["patents"]["stale"] is False
    assert stats["model"]["model"] == "static-64"
    assert stats["ranker"]["candidates"] == RANKER["candidates"]
    assert stats["limits"]["max_upload_bytes"] == UPLOAD_CAP_MB * 2**20
    assert stats["index_in_memory"] is True  # the service reads its indexes in (PMATCH_API_MMAP=1 maps them)
    assert stats["api_keys"] == 1


def test_openapi_is_the_contract_with_bilingual_examples(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert all(p.startswith("/v1/") for p in paths)
    for path in ("/v1/search/patents", "/v1/match/demand", "/v1/match/patent", "/v1/match/portfolio",
                 "/v1/patents/{patent_id}", "/v1/demands/{demand_id}", "/v1/facets/patents", "/v1/ingest/patents",
                 "/v1/ingest/patents/file", "/v1/index/rebuild", "/v1/health", "/v1/ready", "/v1/stats"):
        assert path in paths, path
    text = json.dumps(doc, ensure_ascii=False)
    assert "锂离子电池" in text and "graphics processor thread scheduling" in text
    assert {"HTTPBearer", "APIKeyHeader"} <= set(doc["components"]["securitySchemes"])
    assert "security" in paths["/v1/ingest/patents"]["post"]
    assert "security" in paths["/v1/patents/{patent_id}"]["delete"]
    assert "security" not in paths["/v1/search/patents"]["post"]  # reads are open by default
    assert "ErrorResponse" in doc["components"]["schemas"]


# --- search ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_each_mode(client: httpx.Client, mode: str) -> None:
    r = client.post("/v1/search/patents", json={"query": QUERY, "mode": mode, "limit": 10})
    body = r.json()
    assert r.status_code == 200 and body["mode"] == mode and len(body["results"]) == 10
    assert [h["rank"] for h in body["results"]] == list(range(1, 11))
    first = body["results"][0]
    assert first["record"]["id"] == first["id"] and first["explanation"] is None
    expected = {"bm25": {"bm25"}, "dense": {"dense"}, "hybrid": {"bm25", "dense", "fused"}}[mode]
    assert set(first["retrievers"]) == expected
    if mode == "bm25":
        assert BATTERY.search(first["record"]["title"] + first["record"]["abstract"])


def test_an_emptied_search_says_why(client: httpx.Client) -> None:
    body = client.post("/v1/search/patents", json={"query": QUERY, "limit": 10,
                                                   "filters": {"applicant_type": ["university"]}}).json()
    report = body["filter_report"]
    assert body["results"] == [] and report["emptied_by"] == "applicant_type" and report["found"] == 0
    counts = {f["filter"]: f for f in report["filters"]}
    assert counts["applicant_type"]["keeps"] == 0 and counts["applicant_type"]["missing"] > 0
    assert counts["legal_status"]["default"] is True
    assert report["messages"]["en"][0] == "No results: the filter applicant_type=university left no patents."
    assert report["messages"]["zh"][0].startswith("没有结果")
    full = client.post("/v1/search/patents", json={"query": QUERY, "limit": 10}).json()
    assert len(full["results"]) == 10 and full["filter_report"] is None
    granted = client.get("/v1/search/patents", params={"q": "graphics processor", "granted_only": "true",
                                                       "limit": 5}).json()
    assert granted["results"] and all(h["record"]["granted"] is True for h in granted["results"])


def test_get_and_post_search_agree(client: httpx.Client) -> None:
    post = client.post("/v1/search/patents", json={"query": "processor memory", "limit": 15,
                                                   "filters": {"language": ["en"], "ipc": ["G06F", "G06T"]}})
    get = client.get("/v1/search/patents", params={"q": "processor memory", "limit": 15, "language": "en",
                                                   "ipc": ["G06F", "G06T"]})
    assert ids(post) == ids(get) and ids(post)
    for hit in post.json()["results"]:
        assert hit["language"] == "en" and any(c.startswith(("G06F", "G06T")) for c in hit["record"]["ipc"])


def test_every_filter_is_accepted(client: httpx.Client) -> None:
    filters = {"ipc": ["H01M"], "applicant_type": ["university", "company"], "applicant": "大学",
               "legal_status": ["valid", "unknown"], "open_licence_only": False, "date_from": "2000-01-01",
               "date_to": "2030-12-31", "maturity": [], "kind": ["发明专利"], "language": ["zh"]}
    r = client.post("/v1/search/patents", json={"query": QUERY, "filters": filters})
    assert r.status_code == 200, r.text
    r = client.post("/v1/search/demands", json={"query": "电池", "filters": {
        "industry": ["制造业"], "region": [], "cooperation_modes": [], "language": ["zh"], "active_on": "2020-01-01"}})
    assert r.status_code == 200, r.text
    assert all("制造业" in (h["record"]["industry"] or "") for h in r.json()["results"])


def test_pagination_pages_concatenate_to_the_whole_list(client: httpx.Client) -> None:
    whole = client.post("/v1/search/patents", json={"query": QUERY, "limit": 50}).json()
    assert whole["page"]["window"] == RANKER["candidates"] and len(whole["results"]) == 50
    assert whole["page"]["next_offset"] is None
    pages: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = client.post("/v1/search/patents", json={"query": QUERY, "offset": offset, "limit": 7}).json()
        assert page["page"]["offset"] == offset and len(page["results"]) <= 7
        assert [h["rank"] for h in page["results"]] == list(range(offset + 1, offset + 1 + len(page["results"])))
        pages += [h["id"] for h in page["results"]]
        offset = page["page"]["next_offset"]
    assert pages == [h["id"] for h in whole["results"]]
    assert len(set(pages)) == len(pages)
    beyond = client.post("/v1/search/patents", json={"query": QUERY, "offset": 60, "limit": 10}).json()
    assert beyond["results"] == [] and beyond["page"]["next_offset"] is None


def test_explain_on_demand(client: httpx.Client) -> None:
    r = client.post("/v1/search/patents", json={"query": QUERY, "limit": 3, "explain": True, "mode": "hybrid"})
    hits = r.json()["results"]
    assert all(h["explanation"] is not None for h in hits)
    ex = hits[0]["explanation"]
    assert ex["matched_terms"] and ex["snippets"] and ex["closest_sentence"]["text"]
    for snippet in ex["snippets"].values():
        assert all(0 <= a < b <= len(snippet["text"]) for a, b in snippet["highlights"])


# --- limits and errors -----------------------------------------------------------------------------------
def test_limits(client: httpx.Client, auth: dict[str, str]) -> None:
    assert_error(client.post("/v1/search/patents", json={"query": "电" * 2001}), 422, "validation_error", "query")
    assert client.post("/v1/search/patents", json={"query": "电" * 2000, "mode": "bm25"}).status_code == 200
    assert_error(client.get("/v1/search/patents", params={"q": "x" * 2001}), 422, "validation_error", "q")
    assert_error(client.post("/v1/search/patents", json={"query": "x", "limit": 201}), 422, "validation_error",
                 "limit")
    assert_error(client.post("/v1/search/patents", json={"query": "x", "limit": 0}), 422, "validation_error", "limit")
    assert_error(client.post("/v1/search/patents", json={"query": "x", "offset": -1}), 422, "validation_error",
                 "offset")
    assert_error(client.post("/v1/match/patent", json={"patent_id": "x", "limit": 1000}), 422, "validation_error",
                 "limit")
    big = b"id,title\n" + b"X1,too big\n" * (UPLOAD_CAP_MB * 2**20 // 10)
    assert_error(client.post("/v1/ingest/patents/file", params={"filename": "big.csv"}, content=big, headers=auth),
                 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        for _ in range(UPLOAD_CAP_MB * 4):
            yield b"x" * 2**18 + b"\n"

    assert_error(client.post("/v1/ingest/patents/file", params={"filename": "big.csv"}, content=chunks(),
                             headers=auth), 413, "payload_too_large")
    assert_error(client.post("/v1/search/patents", content=b"{not json", headers={"content-type": "application/json"}),
                 400, "invalid_json")


def test_invalid_filters_name_the_field(client: httpx.Client) -> None:
    cases = [({"ipc": ["X99"]}, "filters.ipc"), ({"date_from": "2020-13-01"}, "filters.date_from"),
             ({"applicant_type": ["alien"]}, "filters.applicant_type.0"), ({"colour": "red"}, "filters.colour"),
             ({"language": "zh"}, "filters.language")]
    for filters, field in cases:
        assert_error(client.post("/v1/search/patents", json={"query": "x", "filters": filters}), 422,
                     "validation_error", field)
    assert_error(client.post("/v1/search/patents", json={"query": "x", "mode": "magic"}), 422, "validation_error",
                 "mode")
    assert_error(client.get("/v1/search/patents", params={"q": "x", "ipc": "ZZ"}), 422, "validation_error", "ipc")
    assert_error(client.get("/v1/search/patents", params={"q": "x", "colour": "red"}), 422, "validation_error",
                 "colour")
    assert_error(client.post("/v1/search/demands", json={"query": "x", "filters": {"active_on": "soon"}}), 422,
                 "validation_error", "filters.active_on")


def test_unknown_ids_are_404(client: httpx.Client, auth: dict[str, str]) -> None:
    assert_error(client.get("/v1/patents/NO-SUCH-ID"), 404, "not_found", "patent_id")
    assert_error(client.get("/v1/demands/NO-SUCH-ID"), 404, "not_found", "demand_id")
    assert_error(client.post("/v1/match/demand", json={"demand_id": "NO-SUCH-ID"}), 404, "not_found", "demand_id")
    assert_error(client.post("/v1/match/patent", json={"patent_id": "NO-SUCH-ID"}), 404, "not_found", "patent_id")
    assert_error(client.post("/v1/match/portfolio", json={"patent_ids": ["NO-SUCH-ID"]}), 404, "not_found",
                 "patent_ids")
    assert_error(client.post("/v1/match/portfolio", json={"applicant": "No Such Applicant Ltd"}), 404, "not_found",
                 "applicant")
    assert_error(client.delete("/v1/patents/NO-SUCH-ID", headers=auth), 404, "not_found", "patent_id")
    assert_error(client.get("/v1/no/such/endpoint"), 404, "not_found", None)
    assert_error(client.put("/v1/health"), 405, "method_not_allowed")


# --- records, matching, facets ---------------------------------------------------------------------------
def test_get_records_and_aliases(client: httpx.Client, data: dict[str, Any], auth: dict[str, str]) -> None:
    patent = data["patents"][0]
    body = client.get(f"/v1/patents/{patent.id}").json()
    assert body["id"] == body["requested_id"] == patent.id and body["record"]["title"] == patent.title
    demand = data["demands"][0]
    assert client.get(f"/v1/demands/{demand.id}").json()["record"]["title"] == demand.title
    # an exact duplicate under another id is not stored; its id resolves to the stored record
    dup = {**patent.model_dump(mode="json", exclude_defaults=True), "id": "ALIAS-OF-FIRST"}
    report = client.post("/v1/ingest/patents", json={"records": [dup]}, headers=auth).json()
    assert report["report"]["duplicates"] == [{"id": "ALIAS-OF-FIRST", "duplicate_of": patent.id}]
    assert report["reindex"]["state"] == "idle"
    alias = client.get("/v1/patents/ALIAS-OF-FIRST").json()
    assert alias["id"] == patent.id and alias["requested_id"] == "ALIAS-OF-FIRST"


def test_match_demand_by_id_and_inline(client: httpx.Client, data: dict[str, Any]) -> None:
    demand = data["demands"][3]
    by_id = client.post("/v1/match/demand", json={"demand_id": demand.id, "limit": 5})
    assert by_id.json()["demand"]["id"] == demand.id and len(ids(by_id)) == 5
    inline = client.post("/v1/match/demand", json={"demand": demand.model_dump(mode="json"), "limit": 5})
    assert ids(inline) == ids(by_id)
    zh = client.post("/v1/match/demand", json={"demand": {"id": "q1", "title": "锂离子电池正极材料制备"}, "limit": 5,
                                               "explain": True, "filters": {"language": ["zh"]}})
    assert all(h["explanation"] for h in zh.json()["results"]) and ids(zh)
    assert_error(client.post("/v1/match/demand", json={"limit": 5}), 422, "validation_error", "demand_id")
    assert_error(client.post("/v1/match/demand", json={"demand": {"id": "q2"}}), 422, "validation_error",
                 "demand.title")


def test_match_patent_and_portfolio(client: httpx.Client, data: dict[str, Any]) -> None:
    patent = data["patents"][5]
    r = client.post("/v1/match/patent", json={"patent_id": patent.id, "limit": 5})
    assert r.json()["patent"]["id"] == patent.id and len(ids(r)) == 5
    pids = [p.id for p in data["patents"][:3]]
    whole = client.post("/v1/match/portfolio", json={"patent_ids": pids, "limit": 6}).json()
    assert whole["patents"] == pids and whole["enterprises"]
    for e in whole["enterprises"]:
        assert e["demands"] and all(p["patent_id"] in pids for d in e["demands"] for p in d["patents"])
    scores = [e["score"] for e in whole["enterprises"]]
    assert scores == sorted(scores, reverse=True)
    second = client.post("/v1/match/portfolio", json={"patent_ids": pids, "offset": 3, "limit": 3}).json()
    assert [e["enterprise"] for e in second["enterprises"]] == [e["enterprise"] for e in whole["enterprises"][3:]]
    by_applicant = client.post("/v1/match/portfolio", json={"applicant": "Technology UK", "limit": 3}).json()
    assert by_applicant["patents"] and by_applicant["enterprises"]
    assert_error(client.post("/v1/match/portfolio", json={"applicant": "NVIDIA", "patent_ids": pids}), 422,
                 "validation_error", "patent_ids")


def test_facets_count_the_served_index(client: httpx.Client) -> None:
    stats = client.get("/v1/stats").json()
    body = client.get("/v1/facets/patents", params={"limit": 1000}).json()
    facets = body["facets"]
    assert body["index"]["name"] == stats["indexes"]["patents"]["name"]
    assert sum(v["count"] for v in facets["language"]) == body["index"]["doc_count"]
    assert sum(v["count"] for v in facets["legal_status"]) == body["index"]["doc_count"]  # incl. unknown
    assert {v["value"] for v in facets["ipc_section"]} <= set("ABCDEFGH")
    assert all(len(v["value"]) == 4 for v in facets["ipc_subclass"])
    counts = [v["count"] for v in facets["applicants"]]
    assert counts == sorted(counts, reverse=True)
    # each patent counts once per IPC section even with several codes in it
    assert max(v["count"] for v in facets["ipc_section"]) <= body["index"]["doc_count"]
    assert len(client.get("/v1/facets/patents", params={"limit": 2}).json()["facets"]["ipc"]) <= 2
    demands = client.get("/v1/facets/demands").json()["facets"]
    assert {"industry", "region", "language", "cooperation_modes", "enterprise"} <= set(demands)


# --- auth and writes -------------------------------------------------------------------------------------
def test_writes_need_a_key(client: httpx.Client, served: tuple[Path, str]) -> None:
    record = {"records": [{"id": "AUTH-1", "title": "鉴权测试专利"}]}
    assert_error(client.post("/v1/ingest/patents", json=record), 401, "unauthorized")
    assert_error(client.post("/v1/ingest/patents", json=record, headers={"X-API-Key": "pmk_bad"}), 401,
                 "unauthorized")
    wrong = served[1][:-4] + "AAAA"
    assert_error(client.post("/v1/ingest/patents", json=record, headers={"Authorization": f"Bearer {wrong}"}), 401,
                 "unauthorized")
    assert_error(client.delete("/v1/patents/AUTH-1"), 401, "unauthorized")
    assert_error(client.post("/v1/index/rebuild", json={}), 401, "unauthorized")
    ok = client.post("/v1/ingest/patents", params={"reindex": "false"}, json=record,
                     headers={"X-API-Key": served[1]})
    assert ok.status_code == 200 and ok.json()["reindex"]["state"] == "disabled"
    assert client.get("/v1/patents/AUTH-1").status_code == 200  # reads are open
    gone = client.delete("/v1/patents/AUTH-1", params={"reindex": "false"},
                         headers={"Authorization": f"Bearer {served[1]}"})
    assert gone.json()["deleted"] == ["AUTH-1"]


def test_ingest_is_all_or_nothing_with_file_line_field(client: httpx.Client, auth: dict[str, str]) -> None:
    records = [{"id": "GOOD-1", "title": "一种好的专利"}, {"id": "BAD-1", "title": "坏专利", "ipc": ["NOT A CODE"]},
               {"id": "BAD-2", "abstract": ""}]
    err = assert_error(client.post("/v1/ingest/patents", json={"records": records}, headers=auth), 422,
                       "invalid_records", "records.1.ipc")
    assert [(d["file"], d["line"], d["field"]) for d in err["details"]] == [("records", 2, "ipc"), ("records", 3, None)]
    assert "nothing was written" in err["message"]
    assert client.get("/v1/patents/GOOD-1").status_code == 404
    skipped = client.post("/v1/ingest/patents", params={"reindex": "false"}, headers=auth,
                          json={"records": records, "skip_invalid": True}).json()
    assert skipped["report"]["inserted"] == 1 and skipped["report"]["rejected"] == 2
    assert [r["line"] for r in skipped["rejects"]] == [2, 3]
    assert client.get("/v1/patents/GOOD-1").status_code == 200
    client.post("/v1/delete/patents", json={"ids": ["GOOD-1"]}, params={"reindex": "false"}, headers=auth)


def test_upload_files(client: httpx.Client, auth: dict[str, str]) -> None:
    csv_text = "公开号,名称,摘要,申请人,法律状态\nUP-1,一种上传测试专利,本发明涉及文件上传,某某大学,有效\n"
    raw = client.post("/v1/ingest/patents/file", params={"filename": "batch.csv", "reindex": "false"},
                      content=csv_text.encode("gb18030"), headers=auth)
    assert raw.status_code == 200, raw.text
    assert raw.json()["report"]["inserted"] == 1 and raw.json()["report"]["file"] == "batch.csv"
    stored = client.get("/v1/patents/UP-1").json()["record"]
    assert stored["legal_status"] == "valid" and stored["applicants"] == ["某某大学"]
    jsonl = '{"id": "UP-2", "title": "multipart upload test", "abstract": "a test"}\n'
    multi = client.post("/v1/ingest/patents/file", params={"reindex": "false"}, headers=auth,
                        files={"file": ("more.jsonl", jsonl.encode(), "application/octet-stream")})
    assert multi.status_code == 200, multi.text
    assert client.get("/v1/patents/UP-2").json()["record"]["language"] == "en"  # detected, as the CLI does
    bad = "id,title,colour\nUP-3,x,red\n"
    err = assert_error(client.post("/v1/ingest/patents/file", params={"filename": "bad.csv"}, content=bad.encode(),
                                   headers=auth), 422, "invalid_file", "colour")
    assert err["details"][0]["file"] == "bad.csv" and err["details"][0]["line"] == 1
    mapped = client.post("/v1/ingest/patents/file", params={"filename": "m.csv", "map": "colour=", "reindex": "false"},
                         content=bad.encode(), headers=auth)
    assert mapped.status_code == 200, mapped.text
    bad_rows = "id,title,ipc\nUP-4,fine,H01M\nUP-5,bad,NOT-IPC\n"
    err = assert_error(client.post("/v1/ingest/patents/file", params={"filename": "rows.csv"},
                                   content=bad_rows.encode(), headers=auth), 422, "invalid_records", "ipc")
    assert (err["details"][0]["file"], err["details"][0]["line"]) == ("rows.csv", 3)
    assert client.get("/v1/patents/UP-4").status_code == 404
    assert_error(client.post("/v1/ingest/patents/file", params={"filename": "x.pdf"}, content=b"%PDF", headers=auth),
                 422, "invalid_upload", "filename")
    assert_error(client.post("/v1/ingest/patents/file", content=b"id\n", headers=auth), 422, "invalid_upload",
                 "filename")
    done = client.post("/v1/delete/patents", json={"ids": ["UP-1", "UP-2", "UP-3", "NOPE"]}, headers=auth,
                       params={"reindex": "false"}).json()
    assert done["deleted"] == ["UP-1", "UP-2", "UP-3"] and done["missing"] == ["NOPE"]


def test_search_and_match_say_when_writes_are_pending(client: httpx.Client, auth: dict[str, str]) -> None:
    """``index.pending_writes`` on search and match responses: true while a write is in the store but not in the
    served snapshot (``reindex=false``), false once a flush made it searchable."""
    query = {"query": "氢燃料电池双极板流道", "mode": "bm25", "limit": 5}
    first = client.post("/v1/ingest/patents", params={"wait": "true"}, headers=auth,
                        json={"records": [{"id": "FRESH-1", "title": "一种氢燃料电池双极板流道结构"}]})
    assert first.status_code == 200 and first.json()["reindex"]["state"] == "published", first.text
    found = client.post("/v1/search/patents", json=query).json()
    assert found["index"]["pending_writes"] is False and "FRESH-1" in [r["id"] for r in found["results"]]
    late = client.post("/v1/ingest/patents", params={"reindex": "false"}, headers=auth,
                       json={"records": [{"id": "FRESH-2", "title": "氢燃料电池双极板流道的冲压方法"}]})
    assert late.status_code == 200, late.text
    stale = client.post("/v1/search/patents", json=query).json()
    assert stale["index"]["pending_writes"] is True and "FRESH-2" not in [r["id"] for r in stale["results"]]
    assert client.get("/v1/search/patents", params={"q": query["query"]}).json()["index"]["pending_writes"] is True
    demand_id = client.post("/v1/search/demands", json={"query": "电池", "limit": 1}).json()["results"][0]["id"]
    matched = client.post("/v1/match/demand", json={"demand_id": demand_id, "limit": 3}).json()
    assert matched["index"]["pending_writes"] is True  # the patents index answered
    assert client.post("/v1/search/demands", json={"query": "电池"}).json()["index"]["pending_writes"] is False
    done = client.post("/v1/ingest/patents", params={"wait": "true"}, headers=auth,
                       json={"records": [{"id": "FRESH-3", "title": "双极板"}]})
    assert done.json()["reindex"]["state"] == "published", done.text
    fresh = client.post("/v1/search/patents", json=query).json()
    assert fresh["index"]["pending_writes"] is False and "FRESH-2" in [r["id"] for r in fresh["results"]]
    client.post("/v1/delete/patents", json={"ids": ["FRESH-1", "FRESH-2", "FRESH-3"]}, headers=auth,
                params={"wait": "true"})


def test_delete_then_search_no_longer_finds_it(client: httpx.Client, auth: dict[str, str]) -> None:
    before = ids(client.post("/v1/search/patents", json={"query": QUERY, "mode": "bm25", "limit": 5}))
    gone = client.delete(f"/v1/patents/{before[0]}", params={"wait": "true"}, headers=auth).json()
    assert gone["deleted"] == [before[0]] and gone["reindex"]["state"] == "published", gone
    after = ids(client.post("/v1/search/patents", json={"query": QUERY, "mode": "bm25", "limit": 5}))
    assert before[0] not in after and after
    assert client.get(f"/v1/patents/{before[0]}").status_code == 404


# --- the atomic swap and concurrency ---------------------------------------------------------------------
def test_searches_during_ingest_and_rebuild_see_old_or_new(client: httpx.Client, data: dict[str, Any],
                                                          auth: dict[str, str]) -> None:
    body = {"query": QUERY, "limit": 20, "mode": "hybrid"}
    old = ids(client.post("/v1/search/patents", json=body))
    held = [p.model_dump(mode="json", exclude_defaults=True) for p in data["held"]]
    held[0]["title"] = "锂离子电池正极材料及其制备方法 " + held[0].get("title", "")  # surely first for BM25
    result: dict[str, Any] = {}

    def ingest() -> None:
        result["response"] = client.post("/v1/ingest/patents", params={"wait": "true"}, json={"records": held},
                                         headers=auth)

    seen: list[tuple[str, ...]] = []
    statuses: Counter[int] = Counter()
    writer = threading.Thread(target=ingest)
    writer.start()
    while writer.is_alive() or len(seen) < 5:  # the client serves requests from several threads at once
        r = client.post("/v1/search/patents", json=body)
        statuses[r.status_code] += 1
        if r.status_code == 200:
            seen.append(tuple(ids(r)))
        time.sleep(0.02)  # a steady stream, not a saturating one: the build runs at lower priority
    writer.join()
    assert result["response"].status_code == 200, result["response"].text
    assert result["response"].json()["reindex"]["state"] == "published"
    new = ids(client.post("/v1/search/patents", json=body))
    assert new != old
    assert held[0]["id"] in ids(client.post("/v1/search/patents", json={**body, "mode": "bm25"}))[:5]
    assert statuses == Counter({200: len(seen)}), statuses
    assert set(seen) <= {tuple(old), tuple(new)}, "a search saw neither the old nor the new index"
    assert seen[0] == tuple(old) and seen[-1] == tuple(new)


def test_concurrent_rebuilds_are_serialised(client: httpx.Client, auth: dict[str, str],
                                            served: tuple[Path, str]) -> None:
    before = client.get("/v1/index/status").json()["builds"]["demands"]
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/index/rebuild", json={"kinds": ["demands"], "wait": True},
                                                      headers=auth), range(3)))
    assert all(a.status_code == 200 and a.json()["state"] == "published" for a in answers), [a.text for a in answers]
    after = client.get("/v1/index/status").json()
    builds = after["builds"]["demands"]
    assert builds["requested"] == before["requested"] + 3 and builds["built"] == builds["requested"]
    assert after["served"]["demands"]["name"] == builds["last_snapshot"]
    home_indexes = served[0] / "indexes" / "demands"
    assert not [p for p in home_indexes.iterdir() if p.name.startswith(".")]  # no half-built snapshot left
    assert client.post("/v1/search/demands", json={"query": "电池"}).status_code == 200


def test_a_full_rebuild_from_the_server_does_not_hold_up_its_flushes(client: httpx.Client, data: dict[str, Any],
                                                                      auth: dict[str, str],
                                                                      served: tuple[Path, str]) -> None:
    """``POST /v1/index/rebuild`` runs on its own thread: while it waits for the workspace's full-build lock (held
    here, as a CLI ``pmatch index build --full`` would hold it), a write's flush publishes and ``wait`` returns."""
    from matcher.indexing import build_lock
    from matcher.workspace import Workspace

    ws = Workspace(served[0])
    record = data["held"][-1].model_copy(update={"id": "CN-FULL-BESIDE-1", "title": "全量重建期间写入的钠离子电池负极"})
    with build_lock(ws, ".full.lock"):
        asked = client.post("/v1/index/rebuild", json={"kinds": ["patents"], "wait": False}, headers=auth)
        assert asked.status_code == 200, asked.text
        deadline = time.monotonic() + 60
        while not client.get("/v1/index/status").json()["builds"]["patents"]["rebuilding"]:
            assert time.monotonic() < deadline, "the full rebuild never started"
            time.sleep(0.1)
        wrote = client.post("/v1/ingest/patents", params={"wait": "true"}, headers=auth,
                            json={"records": [record.model_dump(mode="json", exclude_defaults=True)]})
        assert wrote.status_code == 200 and wrote.json()["reindex"]["state"] == "published", wrote.text
        found = ids(client.post("/v1/search/patents", json={"query": record.title, "mode": "bm25", "limit": 5}))
        assert record.id in found
        status = client.get("/v1/index/status").json()["builds"]["patents"]
        assert status["rebuilding"] and status["pending"]  # the rebuild still waits for the lock
    deadline = time.monotonic() + 300
    while (status := client.get("/v1/index/status").json()["builds"]["patents"])["rebuilding"] or status["pending"]:
        assert time.monotonic() < deadline, "the full rebuild did not finish once the lock was free"
        time.sleep(0.2)
    assert status["last_error"] is None
    served_now = client.get("/v1/index/status").json()["served"]["patents"]["name"]
    assert served_now == status["last_snapshot"]
    assert record.id in ids(client.post("/v1/search/patents", json={"query": record.title, "mode": "bm25"}))


# --- a real server (pmatch serve) ------------------------------------------------------------------------
@pytest.mark.e2e
def test_real_server_limits_threads(live_server: tuple[ApiServer, str]) -> None:
    """``pmatch serve`` re-executes itself with one thread per numeric library before they load."""
    stats = httpx.get(f"{live_server[0].url}/v1/stats", timeout=60).json()
    assert stats["threads"]["OPENBLAS_NUM_THREADS"] == "1" and stats["threads"]["OMP_NUM_THREADS"] == "1"
    assert stats["ranker"]["dense_model"] == "static-64" and stats["index_in_memory"] is True


@pytest.mark.e2e
def test_health_answers_while_searches_run(live_server: tuple[ApiServer, str]) -> None:
    """Searches run in the thread pool: the event loop stays free for a health check."""
    body = {"query": "电池 正极 负极 电解液 隔膜 " * 60, "limit": 50, "explain": True, "mode": "hybrid"}
    started = time.perf_counter()
    with ThreadPoolExecutor(6) as pool, httpx.Client(base_url=live_server[0].url, timeout=120) as client, \
            httpx.Client(base_url=live_server[0].url, timeout=120) as probe:
        futures = [pool.submit(client.post, "/v1/search/patents", json=body) for _ in range(6)]
        time.sleep(0.2)
        t0 = time.perf_counter()
        health = probe.get("/v1/health")
        health_s = time.perf_counter() - t0
        in_flight = sum(not f.done() for f in futures)
        searches = [f.result() for f in futures]
    total = time.perf_counter() - started
    assert health.status_code == 200 and all(r.status_code == 200 for r in searches)
    assert in_flight > 0, f"the searches were too quick to test this ({total:.2f} s)"
    assert health_s < 0.5, f"health took {health_s:.2f} s while searches ran ({total:.2f} s)"


def test_reads_can_be_closed(served: tuple[Path, str]) -> None:
    """``reads_need_key`` closes every endpoint but health: readiness and the docs too (a second app on the same
    workspace)."""
    settings = ServiceSettings(reads_need_key=True, ranker=RankerConfig(**RANKER), warm=False)
    app = create_app(Workspace(served[0]), settings)
    with TestClient(app, headers={"Accept-Language": "en"}) as local:
        assert_error(local.get("/v1/search/patents", params={"q": QUERY}), 401, "unauthorized")
        assert_error(local.get("/v1/stats"), 401, "unauthorized")
        assert_error(local.get("/v1/facets/patents", headers={"X-API-Key": "pmk_nope"}), 401, "unauthorized")
        assert local.get("/v1/search/patents", params={"q": QUERY}, headers={"X-API-Key": served[1]}).status_code == 200
        assert local.get("/v1/health").status_code == 200
        for path in ("/v1/ready", "/docs", "/redoc", "/openapi.json"):  # ready names snapshots and the model
            assert_error(local.get(path), 401, "unauthorized")
            assert local.get(path, headers={"X-API-Key": served[1]}).status_code == 200
        assert local.get("/v1/stats", headers={"Authorization": f"Bearer {served[1]}"}).json()["reads_need_key"]


def test_mmap_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PMATCH_API_MMAP", raising=False)
    assert ServiceSettings().index_in_memory is True
    monkeypatch.setenv("PMATCH_API_MMAP", "1")
    assert ServiceSettings().index_in_memory is False
