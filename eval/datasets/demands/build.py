"""Assemble the judged-demands set in BEIR layout from the pool and the human judgments beside this file.

queries.jsonl: each judged demand (title + description as the query text). qrels: every judged pair with its
0/1/2 grade (zeros included: they are judged non-relevant, not unknown). Demands with no candidate graded 1 or 2
are kept in queries.jsonl but left out of the qrels (no metric is defined for them) and counted in the card.
Split: dev if sha1(query id) % 10 < 3, as for every set. Deterministic.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def split_of(qid: str) -> str:
    return "dev" if int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 10 < 3 else "test"


def main() -> None:
    pool = [json.loads(line) for line in (HERE / "pool.jsonl").read_text("utf-8").splitlines() if line.strip()]
    grades: dict[str, dict[str, int]] = {}
    for path in sorted(HERE.glob("judgments_*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                j = json.loads(line)
                grades.setdefault(j["demand_id"], {})[j["patent_id"]] = int(j["grade"])
    missing = [(p["demand_id"], c["id"]) for p in pool for c in p["candidates"]
               if c["id"] not in grades.get(p["demand_id"], {})]
    if missing:
        raise SystemExit(f"{len(missing)} pooled pairs have no judgment, e.g. {missing[:3]}")
    with (HERE / "queries.jsonl").open("w", encoding="utf-8") as out:
        for p in sorted(pool, key=lambda p: p["demand_id"]):
            text = "\n".join(x for x in (p["title"], p["description"]) if x)
            out.write(json.dumps({"_id": p["demand_id"], "text": text, "lang": "zh", "industry": p["industry"]},
                                 ensure_ascii=False) + "\n")
    (HERE / "qrels").mkdir(exist_ok=True)
    rows: dict[str, list[str]] = {"dev": [], "test": []}
    for qid in sorted(grades):
        if max(grades[qid].values()) == 0:
            continue
        for doc_id, grade in sorted(grades[qid].items()):
            rows[split_of(qid)].append(f"{qid}\t{doc_id}\t{grade}")
    for split, lines in rows.items():
        (HERE / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n", "utf-8")
    corpus = HERE / "corpus.jsonl.gz"
    if not corpus.exists():
        corpus.symlink_to("../corpus/bundled.jsonl.gz")
    dist = Counter(g for d in grades.values() for g in d.values())
    with_pos = sum(1 for d in grades.values() if max(d.values()) > 0)
    with_two = sum(1 for d in grades.values() if max(d.values()) == 2)
    per_split = Counter(split_of(q) for q, d in grades.items() if max(d.values()) > 0)
    print(json.dumps({"demands": len(pool), "judgments": sum(dist.values()), "grades": dict(sorted(dist.items())),
                      "with_relevant": with_pos, "with_grade_2": with_two, "evaluated_per_split": per_split}))


if __name__ == "__main__":
    main()
