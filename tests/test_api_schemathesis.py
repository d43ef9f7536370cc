"""Schemathesis over the service's OpenAPI document, against the session's real server (``live_server``): no
request may cause a 5xx, every error has the one error shape, and no schema-valid request is refused (400/422)
except where the refusal depends on something a schema cannot say (``SCHEMA_CANNOT_SAY``). A stateful run follows
the document's links (``api.http.links``: a search result's id to the record and its match, an ingested record's
id to its lookup and deletion).

Bounded: a few schema-valid and a few schema-invalid examples per operation, a few short link chains, no
shrinking. Requests carry an API key, so the write endpoints are exercised too (on the session's throwaway
workspace, never reindexing). The cases come from schemathesis' Hypothesis strategies (``as_strategy``,
``as_state_machine``) rather than its pytest plugin, whose lazy-fixture loader does not run on pytest 9.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from api_server import ApiServer  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

pytestmark = pytest.mark.e2e

EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 12, schemathesis.GenerationMode.NEGATIVE: 6}
# Operations where a schema-valid request may still be refused, and why the schema cannot say so
SCHEMA_CANNOT_SAY = {
    # the body is a file: whether its bytes are a readable JSONL/CSV/XLSX of valid records is not a JSON Schema
    "POST /v1/ingest/patents/file": "a file's content",
    "POST /v1/ingest/demands/file": "a file's content",
    # the envelope's records are typed by the path's kind and checked by the record rules after normalisation
    # (invisible characters removed, then a title or an abstract left; IPC codes in a printed form; distinct ids
    # in one batch, which uniqueItems cannot say of one key); with skip_invalid, "no valid record" is refused too
    "POST /v1/ingest/patents": "record rules",
    "POST /v1/ingest/demands": "record rules",
}
# (operation, top-level error.field) refusals a schema cannot express
FIELD_CANNOT_SAY = {
    ("POST /v1/match/demand", "demand"),  # an inline demand: the same record rules
    # explain=true caps limit at 50: the POST bodies say so (if/then); two query parameters cannot be related
    ("GET /v1/search/patents", "explain"),
    # a query of symbols the embedding model does not know has no direction to search (model-dependent)
    ("GET /v1/search/patents", "query"), ("POST /v1/search/patents", "query"), ("POST /v1/search/demands", "query"),
    # a feed cursor is opaque: only one the server issued is valid, which a pattern cannot say
    ("GET /v1/feeds/enterprise/{name}", "cursor"), ("GET /v1/feeds/holder/{name}", "cursor"),
    # a notice needs the stored patent's open-licence declaration (flag, royalty, term): the record's data
    ("POST /v1/licence-requests", "patent_id"),
}
# error codes that depend on the server's configuration, not on the request
CONFIG_CODES = {"min_score_unsupported"}  # min_score needs the learned hybrid ranker, which a server may not run


def check_response(response: Any) -> str | None:
    """A problem with this response, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            return f"{response.status_code} not JSON: {response.text[:200]}"
        if set(body) != {"error"} or not {"code", "message", "field"} <= set(body["error"]):
            return f"{response.status_code} not the error shape: {body}"
    return None


def refused_valid(label: str, response: Any) -> str | None:
    """A schema-valid request refused as invalid (400/422) where the schema could have said so, or None."""
    if response.status_code not in (400, 422) or label in SCHEMA_CANNOT_SAY:
        return None
    error = response.json()["error"]
    field = (error.get("field") or "").split(".")[0]
    if (label, field) in FIELD_CANNOT_SAY or error["code"] in CONFIG_CODES:
        return None
    return f"schema-valid but {response.status_code} {error['code']} ({error.get('field')}): {error['message'][:200]}"


def fuzz(operation: Any, mode: Any, count: int, url: str, key: str, problems: list[str]) -> int:
    """Send ``count`` generated requests for one operation; returns how many were sent."""
    label = f"{operation.label} [{mode.value}]"
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=count, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        nonlocal sent
        for part in (case.query, case.body):  # never wait for a rebuild, and rebuild only when asked explicitly
            if isinstance(part, dict):
                part.update({k: False for k in ("wait", "reindex") if k in part})
        response = case.call(base_url=url, headers={"X-API-Key": key}, timeout=60)
        sent += 1
        problem = check_response(response)
        if problem is None and mode == schemathesis.GenerationMode.POSITIVE:
            problem = refused_valid(operation.label, response)
        if problem:
            problems.append(f"{label}: {problem} <- {case.as_curl_command()[:300]}")

    with contextlib.suppress(Unsatisfiable):  # no invalid input exists for some operations: not a server error
        run()
    return sent


def test_no_server_errors(live_server: tuple[ApiServer, str]) -> None:
    server, key = live_server
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    problems: list[str] = []
    sent = sum(fuzz(op, mode, count, server.url, key, problems)
               for op in operations for mode, count in EXAMPLES.items())
    assert sent > 60
    assert not problems, "\n".join(problems[:20])
    assert httpx.get(f"{server.url}/v1/health", timeout=10).status_code == 200


def test_stateful_links(live_server: tuple[ApiServer, str]) -> None:
    """Short chains along the document's links: no 5xx, the error shape, and a linked id that is found."""
    server, key = live_server
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    links = sum(len(response.get("links", {})) for operations in schema.raw_schema["paths"].values()
                for operation in operations.values() for response in operation["responses"].values())
    assert links >= 11
    problems: list[str] = []
    steps: list[str] = []

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            for part in (case.query, case.body):
                if isinstance(part, dict):
                    part.update({k: False for k in ("wait", "reindex") if k in part})

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.url, "headers": {"X-API-Key": key}, "timeout": 60}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            steps.append(case.operation.label)
            problem = check_response(response)
            if problem:
                problems.append(f"{case.operation.label}: {case.as_curl_command()} -> {problem}")

    Chains.run(settings=settings(max_examples=15, stateful_step_count=4, deadline=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck), database=None,
                                 phases=[Phase.generate]))
    assert not problems, "\n".join(problems[:20])
    linked = {"GET /v1/patents/{patent_id}", "GET /v1/demands/{demand_id}", "POST /v1/match/patent",
              "POST /v1/match/demand", "DELETE /v1/patents/{patent_id}", "DELETE /v1/demands/{demand_id}"}
    assert len(steps) > 15 and linked & set(steps), steps
