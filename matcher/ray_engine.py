"""The Ray engine: a job's pending partitions as a Ray Data dataset, one row a partition, mapped by an actor pool.

``run_on_ray`` connects (``connect``: an existing cluster at ``--address``, else a cluster of this machine's CPUs
started for the job), turns the pending partitions into rows ``{part, payload}``, and runs
``map_batches(_PartitionActor, batch_size=1, compute=ActorPoolStrategy(size=workers))``. Each actor builds the job's
worker once (a model, or a searcher over the published snapshot) with its numeric libraries held to one thread
(each actor takes one CPU: N actors on N cores, no oversubscription), then computes partitions until the pool is
drained. Results stream back to this process as they finish; the caller writes each to the job's folder at once,
so a killed driver loses only partitions in flight. A killed worker is restarted by Ray and its partition retried.

What every node must share (README, "Scale-out on Ray"): the same installed patent-match and model packages, the
workspace (store and snapshot folders) at the same path, and the same ``PMATCH_*`` settings, which the driver
forwards to the workers.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from typing import Any

import numpy as np

from indexes.threads import EMBED_THREADS_ENV, FAISS_THREADS_ENV, available_cpus, limit_threads
from matcher.engine import EngineSpec, EngineUnavailable, Payload, Record, WorkerSpec, require_ray

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
CONNECT_TIMEOUT_S = 3.0
WORKER_THREADS = 1
_FORWARDED = ("PMATCH_CACHE", "PMATCH_RANKER_CONFIG", "PMATCH_APPLICANT_RULES", "PMATCH_INGEST_VOCABULARY",
              "PMATCH_LIMIT_TORCH", "HF_HUB_OFFLINE")


def worker_env() -> dict[str, str]:
    """Environment of the job's Ray workers: this process's patent-match settings, one thread per library."""
    env = {k: os.environ[k] for k in _FORWARDED if k in os.environ}
    env.update({EMBED_THREADS_ENV: str(WORKER_THREADS), FAISS_THREADS_ENV: str(WORKER_THREADS),
                "OMP_NUM_THREADS": str(WORKER_THREADS), "OPENBLAS_NUM_THREADS": str(WORKER_THREADS),
                "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false", "RAY_USAGE_STATS_ENABLED": "0"})
    return env


def _host_port(address: str) -> tuple[str, int] | None:
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """Fail fast (seconds, not Ray's long retry loop) when nothing listens at ``address``."""
    if address == "auto":
        return
    target = _host_port(address)
    if target is None:
        raise EngineUnavailable("engine.bad_address", address=address)
    try:
        with socket.create_connection(target, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EngineUnavailable("engine.unreachable", address=address, reason=exc.strerror or str(exc)) from None


def connect(spec: EngineSpec) -> Any:
    """The ``ray`` module, connected: to the cluster already joined by this process (a test's, or a previous job's),
    to ``spec.address``, or to a new single-machine cluster of ``spec.workers`` (default: this machine's) CPUs."""
    require_ray()
    import ray
    import ray.data

    if ray.is_initialized():
        _quiet_data(ray)
        return ray
    options: dict[str, Any] = {"runtime_env": {"env_vars": worker_env()}, "log_to_driver": False,
                               "logging_level": logging.WARNING, "configure_logging": True}
    if spec.address:
        check_reachable(spec.address)
        # `ray start --head` turns token authentication on; a client sends the token (~/.ray/auth_token, or
        # RAY_AUTH_TOKEN) only in token mode
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            ray.init(address=spec.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineUnavailable("engine.unreachable", address=spec.address, reason=str(exc).splitlines()[0]) \
                from None
    else:
        ray.init(address="local", num_cpus=spec.workers or available_cpus(), include_dashboard=False,
                 _node_ip_address="127.0.0.1", **options)
    _quiet_data(ray)
    return ray


def _quiet_data(ray: Any) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "enable_operator_progress_bars"):
        ctx.enable_operator_progress_bars = False
    for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.WARNING)


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _encode(result: Any) -> tuple[bool, bytes]:
    if isinstance(result, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, result, allow_pickle=False)
        return True, buf.getvalue()
    return False, json.dumps(result, ensure_ascii=False).encode("utf-8")


def _decode(npy: bool, blob: bytes) -> Any:
    if npy:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    return json.loads(blob.decode("utf-8"))


class _PartitionActor:
    """One Ray worker: builds the job's worker once, then maps partitions (rows ``{part, payload}``) to results."""

    def __init__(self, cls: type, kwargs: dict[str, Any], threads: int = WORKER_THREADS) -> None:
        os.environ[EMBED_THREADS_ENV] = str(threads)
        os.environ[FAISS_THREADS_ENV] = str(threads)
        limit_threads(threads)
        import ray

        self.worker = cls(**kwargs)
        self.name = f"{ray.get_runtime_context().get_node_id()[:8]}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        parts, npys, blobs = [], [], []
        for part, payload in zip(batch["part"], batch["payload"], strict=True):
            npy, blob = _encode(self.worker(json.loads(str(payload))))
            parts.append(int(part))
            npys.append(npy)
            blobs.append(blob)
        return {"part": np.asarray(parts, dtype=np.int64), "npy": np.asarray(npys, dtype=bool),
                "result": np.asarray(blobs, dtype=object), "worker": np.asarray([self.name] * len(parts), dtype=object)}


POOL_START_TIMEOUT_S = 600  # seconds a job waits for its whole actor pool to start


def run_on_ray(spec: EngineSpec, pending: list[int], worker: WorkerSpec, payload: Payload, record: Record) -> None:
    """Compute ``pending`` partitions on the Ray cluster; ``record(part, result, worker)`` as each one arrives."""
    ray = connect(spec)
    size = max(1, min(spec.workers or cluster_cpus(ray), len(pending)))
    rows = [{"part": part, "payload": json.dumps(payload(part), ensure_ascii=False)} for part in pending]
    # Start once the whole pool is up (Ray Data's default starts with the first actor ready): else an actor that
    # loads its model first takes every partition of a short job, and the other nodes sit idle. Bounded: a cluster
    # without room for the pool fails with Ray's "Timed out while starting actors". Set before the dataset is made
    # (a dataset keeps the context it was made in) and restored after the job.
    context = ray.data.DataContext.get_current()
    waited = context.wait_for_min_actors_s
    context.wait_for_min_actors_s = POOL_START_TIMEOUT_S
    try:
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        # one partition in flight per actor: partitions are coarse (seconds each), so queueing them on a busy actor
        # would only unbalance the pool; Ray Data restarts a dead actor and retries its partition (its defaults)
        pool = ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1)
        mapped = ds.map_batches(_PartitionActor, fn_constructor_kwargs={"cls": worker.cls, "kwargs": worker.kwargs},
                                batch_size=1, batch_format="numpy", compute=pool, num_cpus=1)
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
            for part, npy, blob, name in zip(batch["part"], batch["npy"], batch["result"], batch["worker"],
                                             strict=True):
                record(int(part), _decode(bool(npy), bytes(blob)), str(name))
    finally:
        context.wait_for_min_actors_s = waited
