"""The page's server time for a search against the JSON API's, measured side by side in one run.

    python bench/page_latency.py --home .pmatch --rounds 20        # starts its own server (reads only)
    python bench/page_latency.py --url http://127.0.0.1:8000 --rounds 20

Each round sends every query of the mix (Chinese and English, ``api_load``'s) twice, in random order: once as the
page (``GET /?q=…``: the search, its explanations, the facet counts and the HTML) and once as the JSON API
(``GET /v1/search/patents?q=…&limit=10&explain=true``: the same search and explanations, as JSON). One client,
one request at a time, on loopback, so the time is the server's. A warm-up round is not counted. The floor: the
page's p95 at most 1.5 x the API's.

Prints one JSON object: machine info (``bench/machine.py``, with the load average), requests per side, p50/p95/p99
in milliseconds per side, the p95 ratio and whether the floor holds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import EN_QUERIES, ZH_QUERIES, check_loopback, own_server, percentile
from machine import machine

FLOOR = 1.5


def _timed(client: httpx.Client, path: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path} {params}: HTTP {response.status_code}: {response.text[:300]}")
    return elapsed


def measure(url: str, rounds: int, queries: list[str], seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    times: dict[str, list[float]] = {"page": [], "api": []}
    with httpx.Client(base_url=url, timeout=120) as client:
        for n in range(rounds + 1):
            for query in queries:
                sides = [("page", "/", {"q": query}),
                         ("api", "/v1/search/patents", {"q": query, "limit": 10, "explain": "true"})]
                rng.shuffle(sides)
                for side, path, params in sides:
                    elapsed = _timed(client, path, params)
                    if n:  # round 0 warms caches (sentence vectors, facet counts)
                        times[side].append(elapsed)
    out: dict[str, Any] = {}
    for side, values in times.items():
        out[side] = {"requests": len(values), "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
                     "p99_ms": percentile(values, 99)}
    ratio = out["page"]["p95_ms"] / out["api"]["p95_ms"] if out["api"]["p95_ms"] else None
    out["p95_ratio"] = None if ratio is None else round(ratio, 3)
    out["floor"] = FLOOR
    out["meets_floor"] = ratio is not None and ratio <= FLOOR
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running service on loopback")
    where.add_argument("--home", type=Path, help="start a server on this workspace")
    parser.add_argument("--ranker-config", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=None, help="use only the first N queries of the mix")
    args = parser.parse_args(argv)
    queries = (ZH_QUERIES + EN_QUERIES)[:args.queries]
    before = machine()
    if args.url:
        result = measure(check_loopback(args.url), args.rounds, queries)
    else:
        with own_server(args.home, args.ranker_config) as url:
            result = measure(url, args.rounds, queries)
    print(json.dumps({"bench": "page_latency", "rounds": args.rounds,
                      "queries": len(queries), "machine": before,
                      "load_average_after": machine()["load_average"], **result}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
