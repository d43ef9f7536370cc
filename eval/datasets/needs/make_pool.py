"""Seeds to write needs from, and the blind judging pool for the written needs (see FORMAT.md).

    python -m eval.datasets.needs.make_pool seeds --answer-lang en --n 75 > seeds.jsonl
    python -m eval.datasets.needs.make_pool pool --home .pmatch --lang zh

`seeds`: bundled documents in the answer language with an abstract of at least 80 characters (title-only
records cannot be read as a need), none that is already a target of `crosslingual/`, shuffled with a fixed seed
(`pool` resolves an exact duplicate's id to the id it is stored under). The writer takes them in order and may
skip one it cannot turn into a need (too garbled, or no product in it); the skipped ones are listed in the notes.

`pool`: for every query of `queries_<lang>.jsonl`, the union of its seed and the top DEPTH of each retriever over
all bundled patents (no legal-status filter): BM25, dense, the served hybrid, and BM25 on the query translated
into the other language (`indexes.translate.translate`, keeping the candidate terms the BM25 index can match).
Written twice: `pool_<lang>_blind.jsonl` for the judges (sorted by id, nothing says who
found what) and `pool_<lang>.jsonl` with `found_by` for analysis. Candidates are shown with the first 600
characters of the abstract. A re-run only ADDS to an existing pool (a new retriever, new queries): candidates
already pooled, and so perhaps judged, are kept with their `found_by`; only the new pairs need judging.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SAMPLE = ROOT / "data" / "sample" / "patents.jsonl.gz"
SEED = 20261201
DEPTH = 5
ABSTRACT_CHARS = 600
MODES = ("bm25", "dense", "hybrid")


def crosslingual_targets() -> set[str]:
    out: set[str] = set()
    for path in sorted((HERE.parent / "crosslingual").glob("written_*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                out.update(json.loads(line)["relevant"])
    return out


def seed_candidates(answer_lang: str) -> list[dict]:
    """Eligible seed documents in ``answer_lang``, shuffled with the fixed seed (same list on every run)."""
    taken = crosslingual_targets()
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    eligible = [r for r in rows if r.get("language") == answer_lang and len(r.get("abstract") or "") >= 80
                and r["id"] not in taken]
    eligible.sort(key=lambda r: r["id"])
    random.Random(f"{SEED}-{answer_lang}").shuffle(eligible)
    return eligible


def candidate(record: object) -> dict:
    return {"id": record.id, "title": record.title,  # type: ignore[attr-defined]
            "abstract": (record.abstract or "")[:ABSTRACT_CHARS],  # type: ignore[attr-defined]
            "language": record.language}  # type: ignore[attr-defined]


def pool(home: Path, lang: str, depth: int) -> None:
    from indexes.translate import translate
    from matcher.filters import PatentFilters
    from matcher.search import Searcher
    from matcher.workspace import Workspace

    other = "en" if lang == "zh" else "zh"
    queries = [json.loads(x) for x in (HERE / f"queries_{lang}.jsonl").read_text("utf-8").splitlines() if x.strip()]
    previous: dict[str, dict] = {}
    if (HERE / f"pool_{lang}.jsonl").exists():
        for line in (HERE / f"pool_{lang}.jsonl").read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                previous[row["_id"]] = row
    searcher = Searcher(Workspace(home))
    specificity = searcher.snapshot("patents").bm25.specificity  # keep translations the index can match
    everything = PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"])
    rows = []
    for q in sorted(queries, key=lambda q: q["_id"]):
        old = previous.get(q["_id"])
        if old is not None and old["text"] != q["text"]:
            raise SystemExit(f"queries_{lang}.jsonl: {q['_id']}: text: changed since it was pooled (and judged); "
                             "give the new text a new id")
        pooled: dict[str, dict] = {c["id"]: c for c in old["candidates"]} if old else {}
        runs = [(mode, mode, q["text"]) for mode in MODES]
        runs.append(("bm25_translated", "bm25", translate(q["text"], other, specificity)))
        for name, mode, text in runs:
            for r in searcher.search_patents(text, k=depth, filters=everything, mode=mode):  # type: ignore[arg-type]
                found = pooled.setdefault(r.id, {**candidate(r.record), "found_by": []})["found_by"]
                found[:] = [w for w in found if w.split("@")[0] != name] + [f"{name}@{r.rank}"]
        seed_id = searcher.store.resolve("patents", q["seed"])
        if seed_id is None:
            raise SystemExit(f"queries_{lang}.jsonl: {q['_id']}: seed: {q['seed']} is not in the bundled corpus")
        if seed_id not in pooled:
            record = searcher.store.get("patents", seed_id)
            pooled[seed_id] = {**candidate(record), "found_by": []}
        if "seed" not in pooled[seed_id]["found_by"]:
            pooled[seed_id]["found_by"].append("seed")
        order = [*MODES, "bm25_translated", "seed"]
        for c in pooled.values():
            c["found_by"].sort(key=lambda w: order.index(w.split("@")[0]))
        rows.append({"_id": q["_id"], "text": q["text"], "lang": q["lang"], "answer_lang": q["answer_lang"],
                     "candidates": sorted(pooled.values(), key=lambda c: c["id"])})
    searcher.close()
    with (HERE / f"pool_{lang}.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (HERE / f"pool_{lang}_blind.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            blind = {"_id": row["_id"], "text": row["text"], "lang": row["lang"],
                     "candidates": [{k: v for k, v in c.items() if k != "found_by"} for c in row["candidates"]]}
            out.write(json.dumps(blind, ensure_ascii=False) + "\n")
    sizes = [len(r["candidates"]) for r in rows]
    print(json.dumps({"queries": len(rows), "pairs": sum(sizes), "depth": depth, "pool_min": min(sizes),
                      "pool_max": max(sizes)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seeds", help="list seed documents to write needs from")
    s.add_argument("--answer-lang", choices=("zh", "en"), required=True)
    s.add_argument("--n", type=int, default=75)
    s.add_argument("--skip", type=int, default=0, help="start this far into the shuffled list")
    p = sub.add_parser("pool", help="pool the retrievers' candidates for queries_<lang>.jsonl")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--lang", choices=("zh", "en"), required=True)
    p.add_argument("--depth", type=int, default=DEPTH)
    args = parser.parse_args()
    if args.command == "seeds":
        for r in seed_candidates(args.answer_lang)[args.skip:args.skip + args.n]:
            print(json.dumps({"id": r["id"], "title": r.get("title", ""), "abstract": r["abstract"]},
                             ensure_ascii=False))
    else:
        pool(args.home, args.lang, args.depth)


if __name__ == "__main__":
    main()
