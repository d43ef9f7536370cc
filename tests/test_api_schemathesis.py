"""Schemathesis over the service's OpenAPI document, against the session's real server (``live_server``): no
request may cause a 5xx, and every error has the one error shape.

Bounded: a few schema-valid and a few schema-invalid examples per operation, no shrinking. Requests carry an
API key, so the write endpoints are exercised too (on the session's throwaway workspace, never reindexing). The
cases come from schemathesis' Hypothesis strategies (``as_strategy``) rather than its pytest plugin, whose
lazy-fixture loader does not run on pytest 9.
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
        if problem:
            problems.append(f"{label}: {case.as_curl_command()} -> {problem}")

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
