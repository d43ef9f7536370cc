"""Process-wide faiss settings, applied once when this module is imported (every faiss user imports faiss from here).

* ``OMP_WAIT_POLICY=PASSIVE`` (``setdefault``, so an explicit value wins) before faiss is imported: under CPU
  contention OpenMP spin-waiting made 2-thread searches 2-20x slower here. It only takes effect if no
  OpenMP runtime was loaded earlier in the process.
* ``faiss.omp_set_num_threads(N)`` when ``PMATCH_FAISS_THREADS=N`` is set (otherwise OpenMP's own default,
  which honours ``OMP_NUM_THREADS``). Whatever it is, an IVF/HNSW search of at most ``SMALL_QUERY_BATCH``
  queries runs with one thread (``one_omp_thread``).
* ``faiss.cvar.distance_compute_blas_threshold = 20``: faiss's default (128000) means a flat search only uses
  BLAS (sgemm) for batches of >= 128000 queries, i.e. practically never; batched matching then runs the
  one-query-at-a-time kernel. Measured at 1M x 384, batch 64: 45 ms -> 6.9 ms per query (6.5x). The global
  is shared by every faiss index in the process. The BLAS and non-BLAS kernels round differently, so the
  same query searched alone and in a batch of >= 20 can differ in the last float bits of its scores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from indexes.threads import faiss_threads

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss

__all__ = ["BLAS_THRESHOLD", "SMALL_QUERY_BATCH", "faiss", "one_omp_thread"]

SMALL_QUERY_BATCH = 8  # queries: an approximate search of at most this many runs with one OpenMP thread
BLAS_THRESHOLD = 20


@contextmanager
def one_omp_thread() -> Iterator[None]:
    """Run faiss with one OpenMP thread in this block, in the calling thread only (OpenMP keeps the thread count
    per calling thread), then restore it.

    An IVF or HNSW search of a few queries has nothing to share between threads (faiss parallelises over queries),
    but a second thread still has to be woken: at 1M (bench/scale.py, 600 hybrid queries) that made single-query
    dense searches take 120-280 ms now and then, against <= 20 ms with one thread.
    """
    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _configure_faiss() -> None:
    threads = faiss_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD


_configure_faiss()
