"""Blind judging of matchmaking rows from two versions (issue 14), and the figures once unblinded.

    python eval/judged_set.py blind OLD.jsonl NEW.jsonl --items items.jsonl --key key.json
    # judge items.jsonl by reading: one line per item, "ITEM<TAB>good|loose|bad<TAB>reason", into judgments.tsv
    python eval/judged_set.py unblind items.jsonl key.json judgments.tsv --round 4 --out eval/datasets/shortlist_pairs/
    # judgments made knowing the version (a tuning round): DEMAND<TAB>PATENT<TAB>label<TAB>reason
    python eval/judged_set.py add rows.jsonl judgments.tsv --round 3 --version tune-r3 --out DIR

``blind`` pools both versions' rows (``eval/judged_rows.py`` output), merges a (demand, patent) pair both made
into one item, shuffles with a fixed seed and writes the items without any version label; the key (item ->
versions and sets) goes to a separate file the judge does not open. ``unblind`` joins the judgments to the key,
adds them to the labeled set (``pairs.jsonl``: one judged pair per line, with which versions proposed it and the
round it was judged in; pairs already there are kept) and prints
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


def blind(old: Path, new: Path, items: Path, key: Path, names: tuple[str, str] = ("old", "new")) -> None:
    pooled: dict[tuple[str, str], dict] = {}
    for version, path in zip(names, (old, new), strict=True):
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


def _merge(out: Path, entries: list[dict]) -> None:
    """Add judged pairs to ``out/pairs.jsonl`` (kept as it is): a pair already there keeps its label and gains the
    new proposers; a pair judged twice is refused rather than relabeled silently."""
    path = out / "pairs.jsonl"
    pairs = {(p["demand_id"], p["patent_id"]): p for p in (_read(path) if path.exists() else [])}
    for e in entries:
        key = (e["demand_id"], e["patent_id"])
        if key in pairs:
            if "label" in e and e["label"] != pairs[key]["label"]:
                raise ValueError(f"{key}: judged {e['label']!r}, already labeled {pairs[key]['label']!r}")
            pairs[key]["proposed_by"] += e["proposed_by"]
        else:
            pairs[key] = e
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for p in pairs.values():
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _judgments(judgments: Path) -> dict[str, tuple[str, str]]:
    judged: dict[str, tuple[str, str]] = {}
    for line_no, line in enumerate(judgments.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        *key, label, reason = line.split("\t")
        if label not in LABELS:
            raise ValueError(f"{judgments}:{line_no}: label: {label!r} is not one of {', '.join(LABELS)}")
        judged["\t".join(key)] = (label, reason.strip())
    return judged


def unblind(items: Path, key: Path, judgments: Path, out: Path, round_no: int) -> dict:
    """Join the judgments to the key and add the pairs to ``out/pairs.jsonl`` (round ``round_no``); the figures
    of this round per version and set."""
    proposed = json.loads(key.read_text("utf-8"))
    judged = _judgments(judgments)
    counts: dict[tuple[str, str], Counter] = {}
    entries = []
    for it in _read(items):
        item = str(it["item"])
        if item not in judged:
            raise ValueError(f"{judgments}: item {item} is not judged")
        label, reason = judged[item]
        entries.append({**it, "label": label, "reason": reason, "proposed_by": proposed[item], "round": round_no})
        for p in proposed[item]:
            counts.setdefault((p["version"], p["set"]), Counter())[label] += 1
    _merge(out, entries)
    figures = {f"{v}/{s}": _figures(c) for (v, s), c in sorted(counts.items())}
    (out / f"figures_round{round_no}.json").write_text(json.dumps(figures, indent=1) + "\n", "utf-8")
    return figures


def add(rows: Path, judgments: Path, out: Path, round_no: int, version: str) -> int:
    """Judgments not made blind (``DEMAND<TAB>PATENT<TAB>label<TAB>reason``) of one version's rows, added to
    ``out/pairs.jsonl`` as round ``round_no``; rows already labeled gain ``version`` as a proposer."""
    judged = _judgments(judgments)
    label = {(p["demand_id"], p["patent_id"]) for p in _read(out / "pairs.jsonl")}
    entries = []
    for r in _read(rows):
        key = (r["demand_id"], r["patent_id"])
        who = [{"version": version, "set": r["set"], "chain": r["chain"], "segment": r["segment"]}]
        if key in label:
            entries.append({"demand_id": key[0], "patent_id": key[1], "proposed_by": who})
            continue
        if "\t".join(key) not in judged:
            raise ValueError(f"{judgments}: pair {key} of {rows} is not judged")
        lab, reason = judged["\t".join(key)]
        entries.append({"demand_id": key[0], "patent_id": key[1], "demand": r["demand"], "patent": r["patent"],
                        "label": lab, "reason": reason, "proposed_by": who, "round": round_no, "blind": False})
    _merge(out, entries)
    return len(entries)


def _figures(c: Counter) -> dict:
    n = sum(c.values())
    return {**{k: c[k] for k in LABELS}, "n": n, "good_pct": round(100 * c["good"] / n, 1) if n else None,
            "bad_pct": round(100 * c["bad"] / n, 1) if n else None}


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
    return {k: _figures(c) for k, c in sorted(counts.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("blind")
    b.add_argument("old", type=Path)
    b.add_argument("new", type=Path)
    b.add_argument("--items", type=Path, required=True)
    b.add_argument("--key", type=Path, required=True)
    b.add_argument("--versions", default="old,new", help="the two versions' names in the key (OLD,NEW)")
    u = sub.add_parser("unblind")
    u.add_argument("items", type=Path)
    u.add_argument("key", type=Path)
    u.add_argument("judgments", type=Path)
    u.add_argument("--out", type=Path, required=True)
    u.add_argument("--round", type=int, required=True)
    a = sub.add_parser("add")
    a.add_argument("rows", type=Path)
    a.add_argument("judgments", type=Path)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--round", type=int, required=True)
    a.add_argument("--version", required=True)
    sc = sub.add_parser("score")
    sc.add_argument("rows", type=Path)
    sc.add_argument("labels", type=Path)
    args = ap.parse_args()
    if args.cmd == "score":
        print(json.dumps(score(args.rows, args.labels), indent=1))
    elif args.cmd == "blind":
        old_name, new_name = args.versions.split(",")
        blind(args.old, args.new, args.items, args.key, (old_name, new_name))
    elif args.cmd == "add":
        print(add(args.rows, args.judgments, args.out, args.round, args.version), "rows added")
    else:
        print(json.dumps(unblind(args.items, args.key, args.judgments, args.out, args.round), indent=1))


if __name__ == "__main__":
    main()
