"""Query translation speed: dictionary parse and cached-open times, and queries per second, both directions,
with and without the index-vocabulary filter, and with the served cohesive sense choice.

    python bench/translation.py [--repeat 5]

Queries are the hand-written needs of ``eval/datasets/crosslingual`` (both languages), each rendered for the other
language. The vocabulary filter uses a BM25 index over the bundled sample (``data/sample/patents.jsonl.gz``, built
here first; its build time is not counted). ``cohesive`` adds what search serves (``cohesive_translation``): each
word's senses ranked by how they co-occur in that index's documents. ``long_cohesive`` renders the bundled demands'
title + description (what a shortlist, a push's reciprocal check and a standing match search with) the same way,
over the first ``--long`` demands. Prints one JSON object (machine and load included) on stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (bench/machine.py, beside this script)

from indexes import cedict  # noqa: E402
from indexes import translate as tr  # noqa: E402
from indexes.bm25 import BM25Index  # noqa: E402
from indexes.script import dominant_language  # noqa: E402

QUERIES = ROOT / "eval" / "datasets" / "crosslingual" / "queries.jsonl"
SAMPLE = ROOT / "data" / "sample" / "patents.jsonl.gz"
DEMANDS = ROOT / "data" / "sample" / "demands.jsonl.gz"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes over the queries")
    parser.add_argument("--long", type=int, default=200, help="demand texts rendered for long_cohesive")
    args = parser.parse_args(argv)
    queries = [json.loads(line)["text"] for line in QUERIES.read_text("utf-8").splitlines() if line.strip()]
    load_avg = os.getloadavg()[0]
    started = time.perf_counter()
    cedict.parse_dictionary()
    parse_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        cedict.load_dictionary(Path(tmp))  # parses and writes the cache
        started = time.perf_counter()
        cedict.load_dictionary(Path(tmp))
        open_s = time.perf_counter() - started
    cedict.dictionary()
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    index = BM25Index.build([r["id"] for r in rows],
                            ["\n".join(p for p in (r.get("title"), r.get("abstract")) if p) for r in rows], workers=1)
    out: dict[str, object] = {"machine": {**machine(), "load_avg_1m_at_start": round(load_avg, 2)},
                              "dictionary_parse_seconds": round(parse_s, 2),
                              "dictionary_cached_open_seconds": round(open_s, 4), "queries": len(queries),
                              "repeat": args.repeat}
    with gzip.open(DEMANDS, "rt", encoding="utf-8") as fh:
        long = ["\n".join(p for p in (d.get("title"), d.get("description")) if p)
                for d in (json.loads(line) for line in fh)][:args.long]
    runs = (("plain", queries, None, False, args.repeat),
            ("vocabulary_filtered", queries, index.specificity, False, args.repeat),
            ("cohesive", queries, index.specificity, True, args.repeat),
            ("long_cohesive", long, index.specificity, True, 1))
    for label, texts, weight, cohesive, repeat in runs:
        started = time.perf_counter()
        for _ in range(repeat):
            for q in texts:
                target = "en" if dominant_language(q) == "zh" else "zh"
                tr.render_query(q, target, weight, index.holding_all() if cohesive else None)
        elapsed = time.perf_counter() - started
        out[f"{label}_queries_per_second"] = round(repeat * len(texts) / elapsed, 1)
    out["long_queries"] = len(long)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
