"""How many threads the numeric libraries use: one place for the thread settings and runtime limits.

Read through ``indexes.settings.IndexSettings``; written to the environment by ``limit_threads``, for libraries
and child processes that start later:

* ``PMATCH_EMBED_THREADS``: threads for query/document encoding (torch, USE's BLAS); default: the CPUs this
  process may run on (``embed_threads``).
* ``PMATCH_FAISS_THREADS``: faiss's OpenMP threads; unset leaves OpenMP's default (``faiss_threads``).
* ``limit_threads(n)``: cap every numeric library in this process at ``n`` threads: environment defaults for
  libraries not loaded yet, runtime limits (threadpoolctl, torch, faiss) for those already loaded. A server
  answering each request in its own thread wants 1: N concurrent searches each starting ``cores`` threads on a
  2-core machine collapsed throughput (api/http/server.py measured 15 vs 175 req/s).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from indexes.settings import index_settings

EMBED_THREADS_ENV = "PMATCH_EMBED_THREADS"
FAISS_THREADS_ENV = "PMATCH_FAISS_THREADS"

THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", EMBED_THREADS_ENV: "1",
    FAISS_THREADS_ENV: "1", "TOKENIZERS_PARALLELISM": "false",
}


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity set on Linux, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def embed_threads() -> int:
    """``PMATCH_EMBED_THREADS`` (``IndexSettings.embed_threads``) if set, else ``available_cpus()``."""
    return index_settings().embed_threads or available_cpus()


def faiss_threads() -> int | None:
    """``PMATCH_FAISS_THREADS`` if set, else None (OpenMP's default, which honours ``OMP_NUM_THREADS``)."""
    return index_settings().faiss_threads


def thread_env(threads: int = 1) -> dict[str, str]:
    """The environment variables that cap every numeric library at ``threads`` threads."""
    return {k: (str(threads) if k.endswith("THREADS") else v) for k, v in THREAD_ENV.items()}


def limit_threads(threads: int = 1) -> dict[str, Any]:
    """Cap numeric threads for this process at ``threads``; returns what applies.

    Environment defaults (``setdefault``: an explicit value wins) take effect for libraries not loaded yet; BLAS
    (threadpoolctl), torch and faiss are limited at run time if loaded (torch is imported to do so unless
    ``PMATCH_LIMIT_TORCH=0``).
    """
    for key, value in thread_env(threads).items():
        os.environ.setdefault(key, value)
    applied: dict[str, Any] = {"env": {k: os.environ[k] for k in THREAD_ENV}}
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    applied["threadpoolctl"] = threads
    if "torch" in sys.modules or index_settings().limit_torch:
        try:
            import torch

            torch.set_num_threads(threads)
            torch.set_num_interop_threads(threads)
        except (ImportError, RuntimeError):  # interop threads can only be set before torch starts work
            pass
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)
    return applied


def thread_report() -> dict[str, Any]:
    """The thread settings in force now (for ``/v1/stats``)."""
    out: dict[str, Any] = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                            EMBED_THREADS_ENV, FAISS_THREADS_ENV, "OMP_WAIT_POLICY")}
    from threadpoolctl import threadpool_info

    out["blas"] = [{"api": i.get("internal_api"), "threads": i.get("num_threads")} for i in threadpool_info()]
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    if "faiss" in sys.modules:
        out["faiss"] = sys.modules["faiss"].omp_get_max_threads()
    return out
