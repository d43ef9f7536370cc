"""Blind judging of matchmaking rows from two versions (issue 14), and the figures once unblinded.

    python eval/judged_set.py blind OLD.jsonl NEW.jsonl --items items.jsonl --key key.json
    # judge items.jsonl by reading: one line per item, "ITEM<TAB>good|loose|bad<TAB>reason", into judgments.tsv
    python eval/judged_set.py unblind items.jsonl key.json judgments.tsv --out eval/datasets/shortlist_pairs/

``blind`` pools both versions' rows (``eval/judged_rows.py`` output), merges a (demand, patent) pair both made
into one item, shuffles with a fixed seed and writes the items without any version label; the key (item ->
versions and sets) goes to a separate file the judge does not open. ``unblind`` joins the judgments to the key,
writes the labeled set (``pairs.jsonl``: one judged pair per line, with which versions proposed it) and prints
good / loose / bad per version and set. ``score`` gives the figures of any rows file whose pairs are all in a
labeled set (a later version's rows, once its new pairs are judged and appended).

    python eval/judged_set.py score rows.jsonl eval/datasets/shortlist_pairs/pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

LABELS = ("good", "loose", "bad")
SEED = 1414


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def blind(old: Path, new: Path, items: Path, key: Path) -> None:
    pooled: dict[tuple[str, str], dict] = {}
    for version, path in (("old", old), ("new", new)):
        for row in _read(path):
            pair = (row["demand_id"], row["patent_id"])
            entry = pooled.setdefault(pair, {"row": row, "proposed": []})
            entry["proposed"].append({"version": version, "set": row["set"], "chain": row["chain"],
                                      "segment": row["segment"]})
    entries = list(pooled.values())
    random.Random(SEED).shuffle(entries)
    with items.open("w", encoding="utf-8") as f:
        for n, e in enumerate(entries, 1):
            r = e["row"]
            f.write(json.dumps({"item": n, "demand_id": r["demand_id"], "patent_id": r["patent_id"],
                                "demand": r["demand"], "patent": r["patent"]}, ensure_ascii=False) + "\n")
    key.write_text(json.dumps({str(n): e["proposed"] for n, e in enumerate(entries, 1)}, ensure_ascii=False),
                   "utf-8")


def unblind(items: Path, key: Path, judgments: Path, out: Path) -> dict:
    proposed = json.loads(key.read_text("utf-8"))
    judged: dict[str, tuple[str, str]] = {}
    for line_no, line in enumerate(judgments.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item, label, reason = line.split("\t", 2)
        if label not in LABELS:
            raise ValueError(f"{judgments}:{line_no}: label: {label!r} is not one of {', '.join(LABELS)}")
        judged[item] = (label, reason.strip())
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[tuple[str, str], Counter] = {}
    with (out / "pairs.jsonl").open("w", encoding="utf-8") as f:
        for it in _read(items):
            item = str(it["item"])
            if item not in judged:
                raise ValueError(f"{judgments}: item {item} is not judged")
            label, reason = judged[item]
            f.write(json.dumps({**it, "label": label, "reason": reason, "proposed_by": proposed[item]},
                               ensure_ascii=False) + "\n")
            for p in proposed[item]:
                counts.setdefault((p["version"], p["set"]), Counter())[label] += 1
    figures = {f"{v}/{s}": {**{k: c[k] for k in LABELS}, "n": sum(c.values()),
                            "good_pct": round(100 * c["good"] / sum(c.values()), 1),
                            "bad_pct": round(100 * c["bad"] / sum(c.values()), 1)}
               for (v, s), c in sorted(counts.items())}
    (out / "figures.json").write_text(json.dumps(figures, indent=1) + "\n", "utf-8")
    return figures


def score(rows: Path, labels: Path) -> dict:
    """good / loose / bad of one version's rows, every pair looked up in a labeled set (pairs.jsonl)."""
    label = {(r["demand_id"], r["patent_id"]): r["label"] for r in _read(labels)}
    counts: dict[str, Counter] = {}
    missing = []
    for row in _read(rows):
        pair = (row["demand_id"], row["patent_id"])
        if pair not in label:
            missing.append(pair)
            continue
        counts.setdefault(row["set"], Counter())[label[pair]] += 1
    if missing:
        raise ValueError(f"{rows}: {len(missing)} pairs are not judged, e.g. {missing[0]}")
    return {k: {**{x: c[x] for x in LABELS}, "n": sum(c.values()),
                "good_pct": round(100 * c["good"] / sum(c.values()), 1),
                "bad_pct": round(100 * c["bad"] / sum(c.values()), 1)} for k, c in sorted(counts.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("blind")
    b.add_argument("old", type=Path)
    b.add_argument("new", type=Path)
    b.add_argument("--items", type=Path, required=True)
    b.add_argument("--key", type=Path, required=True)
    u = sub.add_parser("unblind")
    u.add_argument("items", type=Path)
    u.add_argument("key", type=Path)
    u.add_argument("judgments", type=Path)
    u.add_argument("--out", type=Path, required=True)
    sc = sub.add_parser("score")
    sc.add_argument("rows", type=Path)
    sc.add_argument("labels", type=Path)
    args = ap.parse_args()
    if args.cmd == "score":
        print(json.dumps(score(args.rows, args.labels), indent=1))
    elif args.cmd == "blind":
        blind(args.old, args.new, args.items, args.key)
    else:
        print(json.dumps(unblind(args.items, args.key, args.judgments, args.out), indent=1))


if __name__ == "__main__":
    main()
