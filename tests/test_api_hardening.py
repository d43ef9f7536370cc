"""The HTTP service under bad input and anonymous abuse (in-process app over a small workspace, static-64 model):
the bad-input corpus through the upload endpoint, hostile JSON bodies, and the key checked before the body."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_server import RANKER, build_home
from fastapi.testclient import TestClient
from test_api import assert_error
from test_bad_inputs import BAD, CJK, EXPECTED, store_fingerprint

from api.http.app import create_app
from api.http.keys import keys_create
from api.http.settings import ServiceSettings
from matcher.config import RankerConfig
from matcher.records import Demand, Patent
from matcher.workspace import Workspace


@pytest.fixture(scope="module")
def app_home(tmp_path_factory: pytest.TempPathFactory, sample_patents: list[Patent],
             sample_demands: list[Demand]) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("hardening")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PMATCH_VECTOR_CACHE", str(tmp / "vectors.sqlite"))
        home = build_home(tmp, [p for p in sample_patents if p.abstract][:150], sample_demands[:40])
    return home, keys_create(home, "tests")


@pytest.fixture(scope="module")
def client(app_home: tuple[Path, str]) -> Iterator[TestClient]:
    settings = ServiceSettings(ranker=RankerConfig(**RANKER), warm=False, max_upload_bytes=2 * 2**20)
    # The standing-match worker (tests/test_standing.py) would drain the seed's pending work in the background and
    # change the store under the fingerprints these tests take around each refused write.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PMATCH_STANDING_BACKGROUND", "0")
        with TestClient(create_app(Workspace(app_home[0]), settings), headers={"Accept-Language": "en"}) as c:
            yield c


@pytest.fixture(scope="module")
def auth(app_home: tuple[Path, str]) -> dict[str, str]:
    return {"X-API-Key": app_home[1]}


UPLOAD_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".xlsx")
UPLOADABLE = sorted(n for n in EXPECTED if (BAD / n).is_file() and Path(n).suffix in UPLOAD_SUFFIXES
                    and n != "empty.jsonl")  # an empty upload is refused before ingest: see below


@pytest.mark.parametrize("name", UPLOADABLE)
def test_bad_input_through_the_upload(client: TestClient, auth: dict[str, str], app_home: tuple[Path, str],
                                      name: str) -> None:
    case = EXPECTED[name]
    store = app_home[0] / "store.sqlite"
    before = store_fingerprint(store)
    answers = {lang: client.post(f"/v1/ingest/{case['kind']}/file", params={"filename": name, "reindex": "false"},
                                 content=(BAD / name).read_bytes(), headers={**auth, "Accept-Language": header})
               for lang, header in (("en", "en-GB,en;q=0.9"), ("zh", "zh-CN,zh;q=0.9,en;q=0.8"))}
    after = store_fingerprint(store)
    assert after == before and after[0] == "ok", "STORE CHANGED"  # checked first: a clear message does not excuse it
    errors = {lang: assert_error(r, 422, r.json()["error"]["code"]) for lang, r in answers.items()}
    assert errors["en"]["code"] in ("invalid_file", "invalid_records")
    assert errors["zh"]["code"] == errors["en"]["code"]  # the code never changes with the language
    assert [d["code"] for d in errors["zh"]["details"]] == [d["code"] for d in errors["en"]["details"]]
    assert all(r.headers["content-language"] == lang for lang, r in answers.items())
    assert re.search(re.escape(name) + case["message"], errors["en"]["message"]), errors["en"]["message"]
    assert "nothing was written" in errors["en"]["message"] or errors["en"]["code"] == "invalid_file"
    assert CJK.search(errors["zh"]["details"][0]["reason"]), errors["zh"]
    if "message_zh" in case:
        assert re.search(re.escape(name) + case["message_zh"], errors["zh"]["message"]), errors["zh"]["message"]


def test_files_the_upload_refuses_by_name(client: TestClient, auth: dict[str, str]) -> None:
    for name in ("table.txt", "report.pdf", "no_suffix"):
        assert_error(client.post("/v1/ingest/patents/file", params={"filename": name},
                                 content=(BAD / name).read_bytes(), headers=auth), 422, "invalid_upload", "filename")
    assert_error(client.post("/v1/ingest/patents/file", params={"filename": "empty.jsonl"}, content=b"",
                             headers=auth), 422, "invalid_upload", "file")


# --- hostile JSON bodies (defect 4) ------------------------------------------------------------------------
def test_hostile_json_bodies_are_refused_by_name(client: TestClient, auth: dict[str, str]) -> None:
    deep = b'{"records": [{"id": "A1", "title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    error = assert_error(client.post("/v1/ingest/patents", content=deep, headers={**auth,
                                     "content-type": "application/json"}), 400, "invalid_json")
    assert "nested deeper than 64 levels" in error["message"]
    huge = b'{"records": [{"id": "A1", "title": "ok", "price": ' + b"9" * 5000 + b"}]}"
    error = assert_error(client.post("/v1/ingest/patents", content=huge, headers={**auth,
                                     "content-type": "application/json"}), 400, "invalid_json")
    assert "a number of 5,000 digits" in error["message"]
    twice = b'{"records": [{"id": "A1", "title": "first", "title": "second"}]}'
    error = assert_error(client.post("/v1/ingest/patents", content=twice, headers={**auth,
                                     "content-type": "application/json"}), 422, "invalid_records", "records.0.title")
    assert "key given twice" in error["message"]
    assert client.get("/v1/patents/A1").status_code == 404


def test_json_body_records_get_the_files_rules(client: TestClient, auth: dict[str, str]) -> None:
    body = {"records": [{"id": "H-1", "title": "一种电池\u200b正极", "ipc": ["Ｈ０１Ｍ　４／５８"],
                         "legal_status": "有效"}]}
    ok = client.post("/v1/ingest/patents", json=body, params={"reindex": "false"}, headers=auth)
    assert ok.status_code == 200, ok.text
    stored = client.get("/v1/patents/H-1").json()["record"]
    assert stored["title"] == "一种电池正极" and stored["ipc"] == ["H01M4/58"] and stored["legal_status"] == "valid"
    lookalike = {"records": [{"id": "H-1\u200b", "title": "x"}]}
    assert_error(client.post("/v1/ingest/patents", json=lookalike, headers=auth), 422, "invalid_records",
                 "records.0.id")
    client.post("/v1/delete/patents", json={"ids": ["H-1"]}, params={"reindex": "false"}, headers=auth)


# --- the key before the body (defect 6) --------------------------------------------------------------------
def test_key_is_checked_before_the_body(client: TestClient) -> None:
    # keyless invalid JSON: 401, not 400
    assert_error(client.post("/v1/ingest/patents", content=b"{not json", headers={"content-type": "application/json"}),
                 401, "unauthorized")
    # keyless body over the upload limit: 401, not 413 (nothing read to find out)
    big = b"x" * (3 * 2**20)
    assert_error(client.post("/v1/ingest/patents/file", params={"filename": "a.csv"}, content=big), 401,
                 "unauthorized")


def _schema(client: TestClient) -> dict[str, Any]:
    return json.loads(client.get("/openapi.json").text)


def test_the_json_ingest_body_is_documented(client: TestClient) -> None:
    body = _schema(client)["paths"]["/v1/ingest/patents"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is True and schema["required"] == ["records"]


# --- the cost of one request is bounded (defect 6) ---------------------------------------------------------
def test_one_request_costs_a_bounded_amount(client: TestClient) -> None:
    assert_error(client.post("/v1/search/patents", json={"query": "x", "filters": {"ipc": ["H01M"] * 101}}), 422,
                 "validation_error", "filters.ipc")
    assert client.post("/v1/search/patents", json={"query": "电池", "mode": "bm25",
                                                    "filters": {"ipc": ["H01M"] * 100}}).status_code == 200
    assert_error(client.post("/v1/search/demands", json={"query": "x", "filters": {"region": ["浙江"] * 101}}), 422,
                 "validation_error", "filters.region")
    # 2,000 characters that NFKC makes 36,000 (U+FDFA is 18 characters): refused after normalisation
    error = assert_error(client.post("/v1/search/patents", json={"query": "\ufdfa" * 2000}), 422, "validation_error",
                         "query")
    assert "after Unicode (NFKC) normalisation" in error["message"]
    assert_error(client.post("/v1/search/patents", json={"query": "   "}), 422, "validation_error", "query")
    assert_error(client.post("/v1/search/patents", json={"query": "电池", "explain": True, "limit": 51}), 422,
                 "validation_error", "explain")
    assert client.post("/v1/search/patents", json={"query": "电池", "mode": "bm25", "explain": True,
                                                    "limit": 50}).status_code == 200


def test_the_schema_says_what_the_server_enforces(client: TestClient) -> None:
    schemas = _schema(client)["components"]["schemas"]
    ipc = schemas["PatentFilters"]["properties"]["ipc"]
    assert ipc["maxItems"] == 100 and "pattern" in ipc["items"]
    assert re.search(ipc["items"]["pattern"], "G06F 21/10") and not re.search(ipc["items"]["pattern"], "X99")
    query = schemas["PatentSearchRequest"]["properties"]["query"]
    assert not re.search(query["pattern"], "   ") and not re.search(query["pattern"], "\x1a\u200b")
    assert re.search(query["pattern"], " 电池 ")
    # exactly one of demand_id / demand and of patent_ids / applicant
    assert [b["required"] for b in schemas["MatchDemandRequest"]["oneOf"]] == [["demand_id"], ["demand"]]
    assert [b["required"] for b in schemas["PortfolioRequest"]["oneOf"]] == [["patent_ids"], ["applicant"]]
    # an empty record is no record
    ingest = _schema(client)["paths"]["/v1/ingest/patents"]["post"]["requestBody"]["content"]["application/json"]
    assert ingest["schema"]["properties"]["records"]["items"]["minProperties"] == 2
    # the id pattern means the same in Python and ECMA-262: no \s, \d or \w, whose meaning differs
    pattern = schemas["Patent"]["properties"]["id"]["pattern"]
    assert not re.search(r"\\[sdwSDW]", pattern)
    for good in ("CN113914863A", "a.b", "ZB-D-0001"):
        assert re.search(pattern, good)
    for bad in ("..", ".", "A 1", "A/1", "A\u200b1", "A\u3000B", "A\x1cB", "A\ufeffB"):
        assert not re.search(pattern, bad), bad


def test_schema_examples_of_exactly_one_are_what_the_server_does(client: TestClient) -> None:
    both = {"demand_id": "ZB-D-0001", "demand": {"id": "x", "title": "y"}}
    assert_error(client.post("/v1/match/demand", json=both), 422, "validation_error")
    assert_error(client.post("/v1/match/portfolio", json={}), 422, "validation_error")


# --- overload: searches queue with a bound, then 503 + Retry-After (defect 7) ------------------------------
def test_searches_past_the_bound_get_503_with_retry_after(app_home: tuple[Path, str]) -> None:
    settings = ServiceSettings(ranker=RankerConfig(**RANKER), warm=False, request_threads=1, max_queued_requests=0)
    app = create_app(Workspace(app_home[0]), settings)
    gate, entered = threading.Event(), threading.Event()
    with TestClient(app, headers={"Accept-Language": "en"}) as local:
        searcher = app.state.service.searcher
        original = searcher.search

        def slow_search(*args: Any, **kwargs: Any) -> Any:  # holds the one worker thread until released
            entered.set()
            gate.wait(30)
            return original(*args, **kwargs)

        searcher.search = slow_search  # type: ignore[method-assign]
        body = {"query": "电池", "mode": "bm25"}
        first: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: first.update(r=local.post("/v1/search/patents", json=body)))
        worker.start()
        try:
            assert entered.wait(30)
            began = time.monotonic()
            shed = local.post("/v1/search/patents", json=body)
            assert_error(shed, 503, "overloaded")
            assert time.monotonic() - began < 5  # answered at once, not queued behind the held search
            assert shed.headers["retry-after"] == "1"
            assert local.get("/v1/health").status_code == 200  # health never queues
        finally:
            gate.set()
            worker.join(30)
        assert first["r"].status_code == 200
        assert local.post("/v1/search/patents", json=body).status_code == 200  # the bound frees again


def test_a_stalled_body_is_a_408(app_home: tuple[Path, str]) -> None:
    """A client that sends a few bytes and then nothing: the body read gives up after ``body_read_timeout_s``
    (driven at the ASGI level: a test client sends whole bodies, so it cannot stall one)."""
    import anyio

    settings = ServiceSettings(ranker=RankerConfig(**RANKER), warm=False, body_read_timeout_s=0.5)
    app = create_app(Workspace(app_home[0]), settings)
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": b'{"records": [', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop(0)
        await anyio.sleep(30)  # the client stalls
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/ingest/patents", "raw_path": b"/v1/ingest/patents", "query_string": b"", "root_path": "",
             "headers": [(b"x-api-key", app_home[1].encode()), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "app": app}
    began = time.monotonic()
    with TestClient(app):  # runs the lifespan (service started), then drive one request by hand
        anyio.run(app, scope, receive, send)
    assert time.monotonic() - began < 20
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert start["status"] == 408 and body["error"]["code"] == "request_timeout"


def test_the_raw_uploads_filename_is_required_in_the_schema(client: TestClient, auth: dict[str, str]) -> None:
    operation = _schema(client)["paths"]["/v1/ingest/patents/file"]["post"]
    (filename,) = [p for p in operation["parameters"] if p["name"] == "filename"]
    assert filename["required"] is True and filename["in"] == "query"
    pattern = filename["schema"]["pattern"]
    for good in ("a.csv", "批量.XLSX", "x.Jsonl", "y.tsv"):
        assert re.search(pattern, good), good
    for bad in ("a.txt", "a.csv.pdf", "csv"):
        assert not re.search(pattern, bad), bad
    # the server enforces it for a raw body, and a long schema-valid name keeps its suffix
    assert_error(client.post("/v1/ingest/patents/file", content=b"id,title\nX,y\n", headers=auth), 422,
                 "invalid_upload", "filename")
    long_name = "长" * 250 + ".csv"
    ok = client.post("/v1/ingest/patents/file", params={"filename": long_name, "reindex": "false"},
                     content="id,title\nLONG-1,一种测试\n".encode(), headers=auth)
    assert ok.status_code == 200, ok.text
    assert ok.json()["report"]["file"].endswith(".csv")
    client.post("/v1/delete/patents", json={"ids": ["LONG-1"]}, params={"reindex": "false"}, headers=auth)


# --- readiness answers from a cache, refreshed on publish (defect 7) ---------------------------------------
def test_readiness_reads_no_manifest_until_a_publish(app_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from matcher.full_build import build_snapshot

    settings = ServiceSettings(ranker=RankerConfig(**RANKER), warm=False)
    app = create_app(Workspace(app_home[0]), settings)
    workspace = app.state.service.workspace
    reads: list[str] = []
    original = workspace.current_manifest

    def counted(kind: Any) -> Any:
        reads.append(kind)
        return original(kind)

    monkeypatch.setattr(workspace, "current_manifest", counted)
    with TestClient(app, headers={"Accept-Language": "en"}) as local:
        first = local.get("/v1/ready").json()["indexes"]
        for _ in range(20):
            assert local.get("/v1/ready").json()["indexes"] == first
        assert sorted(reads) == ["demands", "patents"]  # once per kind, not once per request
        # a snapshot published by another process (the CLI) replaces CURRENT: seen on the next request
        monkeypatch.setenv("PMATCH_VECTOR_CACHE", str(app_home[0].parent / "vectors.sqlite"))
        build_snapshot(Workspace(app_home[0]), "demands", dense_model="static-64")
        now = local.get("/v1/ready").json()["indexes"]
        assert now["demands"] != first["demands"] and now["patents"] == first["patents"]
        assert now["demands"] == Workspace(app_home[0]).current_snapshot("demands").name  # type: ignore[union-attr]


# --- messages in the request's language: Chinese unless Accept-Language prefers English ---------------------
@pytest.mark.parametrize(("header", "lang"), [(None, "zh"), ("zh-CN", "zh"), ("en-US,en;q=0.9", "en"),
                                              ("fr-FR,en;q=0.5,zh;q=0.8", "zh"), ("fr", "zh"), ("en;q=0, zh", "zh"),
                                              ("de, en-GB;q=0.7", "en")])
def test_errors_are_worded_in_the_requests_language(client: TestClient, auth: dict[str, str], header: str | None,
                                                    lang: str) -> None:
    headers = {"Accept-Language": header} if header is not None else {"Accept-Language": ""}
    cases = [  # (response, code, a word of the zh form, a word of the en form)
        (client.post("/v1/search/patents", json={"query": "电池", "explain": True, "limit": 51}, headers=headers),
         "validation_error", "每次最多解释", "explains at most"),
        (client.get("/v1/patents/NOPE-1", headers=headers), "not_found", "没有编号为", "no patent with id"),
        (client.post("/v1/ingest/patents", content=b"{}", headers={"content-type": "application/json", **headers}),
         "unauthorized", "需要 API 密钥", "an API key is required"),
        (client.post("/v1/ingest/patents/file", params={"filename": "x.csv"}, content=b'id,title\n"A1,x\n',
                     headers={**auth, **headers}), "invalid_records", "引号没有闭合", "is never closed"),
        (client.get("/v1/nowhere", headers=headers), "not_found", "没有这个接口", "no such endpoint"),
    ]
    for response, code, zh, en in cases:
        error = response.json()["error"]
        assert error["code"] == code, error
        assert (zh if lang == "zh" else en) in error["message"], (header, error["message"])
        assert (en if lang == "zh" else zh) not in error["message"]
        assert response.headers["content-language"] == lang
    detail = cases[0][0].json()["error"]["details"][0]
    assert detail["code"] == "explain_limit" and detail["field"] == "explain"
    assert cases[3][0].json()["error"]["details"][0]["code"] == "csv_unclosed_quote"
