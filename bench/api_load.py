"""Load test of the HTTP service from a second process: N concurrent clients for a bounded time, per client count.

    python bench/api_load.py --url http://127.0.0.1:8000 --clients 1 8 32 --seconds 10
    python bench/api_load.py --home /tmp/demo2 --clients 1 8 32 --seconds 10   # starts its own server
    python bench/api_load.py --home /tmp/demo2 --clients 50 --seconds 60 --code-root /tmp/old --code-root .
        # the same load on servers run from two checkouts, one after the other in one run (before/after figures);
        # --root-home gives a checkout its own workspace when it cannot read the other's store

The query mix is Chinese and English patent searches (default mode: the server's ranker config) and matches of
stored demands to patents. Each client sends its next request as soon as the previous one answers (a closed loop),
so requests/s is the service's throughput at that concurrency. A probe in a process of its own (so the load
generator's own event loop does not count) measures ``/v1/health`` and ``/v1/ready`` latency during each run: it
stays low if searches never block the event loop. A 503 answer with ``Retry-After`` (the server shedding load)
is counted as ``shed``, apart from errors. Only ever targets 127.0.0.1 (or localhost / ::1).

Prints one JSON object on stdout: per client count, requests/s, latency p50/p95/p99, errors, and machine info
(``load_avg`` included: the machine is shared, compare runs with that in mind). With ``--home``, the server is
started with ``python -m api.cli serve`` on a free port (reads only: the workspace is not modified).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

ZH_QUERIES = [
    "锂离子电池 正极材料", "石墨烯 散热膜", "污水处理 膜分离 技术", "智能灌溉 土壤湿度 传感器", "针织围巾 防起球",
    "新能源汽车 电池热管理", "中药提取物 制备方法", "农作物 病虫害 识别", "高强度 复合材料 制备",
    "无人机 巡检 图像识别",
]
EN_QUERIES = [
    "graphics processor thread scheduling", "memory controller", "neural network inference accelerator",
    "ray tracing acceleration structure", "cathode material for lithium batteries", "video encoding motion estimation",
    "cache coherence in multiprocessor systems", "deep learning training on GPUs", "display refresh rate adaptation",
]


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 0
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(), "platform": platform.platform(),
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def check_loopback(url: str) -> str:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to load {url}: only 127.0.0.1 / localhost / ::1 may be targeted")
    return url.rstrip("/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def own_server(home: Path, ranker_config: Path | None, workers: int = 1, code_root: Path = ROOT) -> Iterator[str]:
    """``python -m api.cli serve`` of the code under ``code_root`` on a free 127.0.0.1 port, until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(code_root.resolve()), "COLUMNS": "200"}
    usage = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--help"], cwd=code_root, env=env,
                           capture_output=True, text=True).stdout  # an older checkout may lack some options
    cmd = [sys.executable, "-m", "api.cli", "serve", "--home", str(home), "--port", str(port), "--log-level",
           "warning"]
    cmd += [option for option in ("--no-access-log",) if option in usage]
    cmd += ["--workers", str(workers)] if "--workers" in usage else []
    if ranker_config:
        cmd += ["--ranker-config", str(ranker_config)]
    proc = subprocess.Popen(cmd, cwd=code_root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited:\n{proc.stderr.read() if proc.stderr else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("server not ready after 300 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)


def request_mix(demand_ids: list[str], mode: str | None, limit: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, path, JSON body) requests: 40% Chinese searches, 30% English searches, 30% demand matches."""
    extra = {"mode": mode} if mode else {}
    mix = [("search_zh", "/v1/search/patents", {"query": q, "limit": limit, **extra}) for q in ZH_QUERIES] * 4
    mix += [("search_en", "/v1/search/patents", {"query": q, "limit": limit, **extra}) for q in EN_QUERIES] * 3
    for demand_id in (demand_ids * 30)[:30]:
        mix.append(("match_demand", "/v1/match/demand", {"demand_id": demand_id, "limit": limit, **extra}))
    return mix


def _probe(url: str, seconds: float, out: Any) -> None:
    """In its own process: GET /v1/health and /v1/ready every 0.25 s for ``seconds``; latencies (ms) to ``out``."""
    found: dict[str, list[float]] = {"health": [], "ready": []}
    failed = 0
    stop_at = time.perf_counter() + seconds
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.perf_counter() < stop_at:
            for name in ("health", "ready"):
                started = time.perf_counter()
                try:
                    ok = http.get(f"/v1/{name}").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    found[name].append((time.perf_counter() - started) * 1000)
                else:
                    failed += 1
            time.sleep(0.25)
    out.put({**found, "failed": failed})


async def run_clients(url: str, clients: int, seconds: float, mix: list[tuple[str, str, dict[str, Any]]],
                      seed: int) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    shed: dict[str, int] = {}
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            while time.perf_counter() < stop_at:
                kind, path, body = rng.choice(mix)
                started = time.perf_counter()
                try:
                    response = await http.post(path, json=body)
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
                except httpx.HTTPError:
                    status, retry_after = 0, None
                if status == 200:
                    latencies.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
                elif status == 503 and retry_after:
                    shed[kind] = shed.get(kind, 0) + 1
                    await asyncio.sleep(min(float(retry_after), 1.0) * rng.random())  # a client that honours it
                else:
                    errors[kind] = errors.get(kind, 0) + 1

        results: Any = multiprocessing.get_context("spawn").Queue()
        prober = multiprocessing.get_context("spawn").Process(target=_probe, args=(url, seconds, results))
        prober.start()
        began = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - began
        probe = results.get(timeout=seconds + 60)
        prober.join(30)
    every = [x for values in latencies.values() for x in values]
    health, ready = probe["health"], probe["ready"]
    return {
        "clients": clients, "seconds": round(elapsed, 2), "requests": len(every),
        "requests_per_s": round(len(every) / elapsed, 2), "errors": sum(errors.values()), "shed": sum(shed.values()),
        "latency_ms": {"p50": percentile(every, 50), "p95": percentile(every, 95), "p99": percentile(every, 99),
                       "max": round(max(every), 2) if every else None},
        "by_kind": {k: {"requests": len(v), "p50_ms": percentile(v, 50), "p95_ms": percentile(v, 95),
                        "errors": errors.get(k, 0)} for k, v in sorted(latencies.items())},
        "health_ms_while_loaded": {"p50": percentile(health, 50), "p99": percentile(health, 99),
                                   "max": round(max(health), 2) if health else None},
        "ready_ms_while_loaded": {"p50": percentile(ready, 50), "p99": percentile(ready, 99),
                                  "max": round(max(ready), 2) if ready else None},
        "probe_failures": probe["failed"],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }


def server_info(url: str) -> tuple[dict[str, Any], list[str]]:
    stats = httpx.get(f"{url}/v1/stats", timeout=30).json()
    found = httpx.post(f"{url}/v1/search/demands", json={"query": "技术 需求 方法", "limit": 30, "mode": "bm25"},
                       timeout=30).json()
    demand_ids = [r["id"] for r in found.get("results", [])] or ["ZB-D-0001"]
    info = {"records": stats["records"], "model": (stats.get("model") or {}).get("model"),
            "mode": stats["ranker"]["mode"], "candidates": stats["ranker"]["candidates"],
            "threads": {k: v for k, v in stats["threads"].items() if k != "blas"}}
    return info, demand_ids


def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    info, demand_ids = server_info(url)
    mix = request_mix(demand_ids, args.mode, args.limit)
    asyncio.run(run_clients(url, 2, args.warmup, mix, seed=0))  # warm caches and connections
    runs = []
    for n in args.clients:
        print(f"{n} clients for {args.seconds} s ...", file=sys.stderr, flush=True)
        runs.append(asyncio.run(run_clients(url, n, args.seconds, mix, seed=n)))
    return {"benchmark": "api_load", "url": url, "mode": args.mode or info["mode"], "limit": args.limit,
            "mix": {"search_zh": 0.4, "search_en": 0.3, "match_demand": 0.3}, "server": info,
            "machine": machine(), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="A running server (127.0.0.1 only), e.g. http://127.0.0.1:8000")
    target.add_argument("--home", type=Path, help="Start a server on this workspace (read-only use)")
    parser.add_argument("--ranker-config", type=Path, help="RankerConfig JSON for the server started with --home")
    parser.add_argument("--workers", type=int, default=1, help="Server processes for the server started with --home")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="Per client count (bounded: at most 120)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default=None)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--code-root", type=Path, action="append", default=[], help=(
        "With --home: run the server from this checkout (repeat: each in turn, same load, one JSON per root)"))
    parser.add_argument("--root-home", type=Path, action="append", default=[], help=(
        "The workspace of the N-th --code-root, when its store format differs (an older checkout cannot read a "
        "newer store: build one from the same sample with that checkout's `pmatch demo`); default --home"))
    args = parser.parse_args(argv)
    if len(args.root_home) > len(args.code_root):
        parser.error("--root-home pairs with a --code-root: give no more of them")
    if not 0 < args.seconds <= 120 or not all(0 < n <= 256 for n in args.clients):
        parser.error("--seconds must be in (0, 120] and --clients in 1..256")
    if args.url:
        result: Any = bench(check_loopback(args.url), args)
    elif not args.code_root:
        with own_server(args.home, args.ranker_config, args.workers) as url:
            result = bench(url, args)
    else:
        result = {"benchmark": "api_load side by side", "roots": []}
        homes = args.root_home + [args.home] * (len(args.code_root) - len(args.root_home))
        for root, home in zip(args.code_root, homes, strict=True):
            with own_server(home, args.ranker_config, args.workers, root) as url:
                print(f"server from {root} on {home} ...", file=sys.stderr, flush=True)
                result["roots"].append({"code_root": str(root.resolve()), "home": str(home.resolve()),
                                        **bench(url, args)})
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
