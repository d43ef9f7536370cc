"""Build the labelled evaluation sets in the BEIR layout from the bundled sample: ``python -m eval.datasets.build``.

Reads only ``data/sample/patents.jsonl.gz`` and the hand-written queries ``eval/datasets/crosslingual/written_*.jsonl``
and writes, under ``--out`` (default ``eval/datasets``)::

    corpus/bundled.jsonl.gz   the whole bundled sample as one BEIR corpus (every Patent field but ``keywords``)
    known_item_zh/            KPPatent keyphrases -> the patent they were written for
    classification/           CN patent titles / USPTO patents -> the documents sharing their IPC/CPC codes
    crosslingual/             queries written in one language -> the patent (other language) they were written from
    README.md                 the table of sets

Each set folder holds ``queries.jsonl``, ``qrels/dev.tsv``, ``qrels/test.tsv``, ``corpus.jsonl.gz`` (a relative
symlink to the bundled corpus, or the set's own file) and ``CARD.md`` (how the labels were made, counts, biases).
The output is deterministic: rows sorted, fixed seeds, gzip with ``mtime=0`` and no file name, no timestamps.
The known-item and cross-lingual sets are built here, the classification set in ``eval.datasets.classification_set``;
the set type and the file writing are ``eval.datasets.labelled``, the cards' text ``eval.datasets.cards``.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.datasets import cards
from eval.datasets.classification_set import build_classification
from eval.datasets.labelled import (
    LabelledSet,
    Qrels,
    Row,
    corpus_doc,
    describe,
    gzip_bytes,
    is_dev,
    jsonl_bytes,
    numbered,
    qrels_tsv,
    read_jsonl,
    record_key,
    source_name,
    write_bytes,
    write_symlink,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
WRITTEN = ROOT / "eval" / "datasets" / "crosslingual"
WRITTEN_FILES = ("written_en_from_tac.jsonl", "written_en_from_abstracts.jsonl", "written_zh_from_uspto.jsonl")
BUNDLED = "corpus/bundled.jsonl.gz"
BUNDLED_LINK = "../corpus/bundled.jsonl.gz"  # what a set's corpus.jsonl.gz points to, relative to the set folder

# Fixed seeds: changing one changes the sample (and so every number in the cards).
SEED_KNOWN_ITEM = 20_240_601
KNOWN_ITEM_QUERIES = 1_000
KNOWN_ITEM_MIN_PHRASES = 3  # keyphrases of 2+ characters


# ---------------------------------------------------------------- known_item_zh


def keyphrase_query(record: Row) -> list[str] | None:
    phrases = [k for k in record.get("keywords", []) if len(k.strip()) >= 2]
    return phrases if len(phrases) >= KNOWN_ITEM_MIN_PHRASES else None


def build_known_item(records: list[Row], dup_groups: dict[str, list[str]]) -> LabelledSet:
    kp = [r for r in records if source_name(r) in ("kppatent_tac", "kppatent_a") and r.get("keywords")]
    eligible = sorted((r for r in kp if keyphrase_query(r)), key=lambda r: r["id"])
    chosen = sorted(random.Random(SEED_KNOWN_ITEM).sample(eligible, KNOWN_ITEM_QUERIES), key=lambda r: r["id"])
    queries: list[Row] = []
    qrels: Qrels = {}
    verbatim = all_verbatim = dropped_short = 0
    n_phrases: list[int] = []
    twins: list[str] = []
    for qid, rec in zip(numbered("ki-zh-", len(chosen), 4), chosen, strict=True):
        phrases = keyphrase_query(rec) or []
        dropped_short += len(rec["keywords"]) - len(phrases)
        n_phrases.append(len(phrases))
        body = "\n".join(str(rec.get(k, "")) for k in ("title", "abstract", "claims"))
        hits = sum(p in body for p in phrases)
        verbatim += hits
        all_verbatim += hits == len(phrases)
        queries.append({"_id": qid, "text": " ".join(phrases), "lang": "zh", "source": source_name(rec),
                        "n_keyphrases": len(phrases)})
        qrels[qid] = {rec["id"]: 1}
        group = dup_groups[record_key(rec)]
        if len(group) > 1:
            twins.append(f"{rec['id']} = {', '.join(i for i in group if i != rec['id'])}")
    facts = {
        "kp_records": len(kp),
        "kp_by_source": dict(sorted(Counter(source_name(r) for r in kp).items())),
        "eligible": len(eligible),
        "eligible_by_source": dict(sorted(Counter(source_name(r) for r in eligible).items())),
        "chosen_by_source": dict(sorted(Counter(source_name(r) for r in chosen).items())),
        "phrases": describe(n_phrases),
        "phrases_total": sum(n_phrases),
        "dropped_short": dropped_short,
        "verbatim_share": round(verbatim / max(1, sum(n_phrases)), 3),
        "all_verbatim_share": round(all_verbatim / len(chosen), 3),
        "twins": twins,
        "seed": SEED_KNOWN_ITEM,
    }
    return LabelledSet("known_item_zh", queries, qrels, None, facts)


# ---------------------------------------------------------------- crosslingual


def build_crosslingual(records: list[Row], dup_groups: dict[str, list[str]], written: Path) -> LabelledSet:
    by_id = {r["id"]: r for r in records}
    queries: list[Row] = []
    qrels: Qrels = {}
    per_file: dict[str, dict[str, Any]] = {}
    twins: list[str] = []
    for name in WRITTEN_FILES:
        rows = read_jsonl(written / name)
        stem = name.removesuffix(".jsonl")
        targets: Counter[str] = Counter()
        for row in rows:
            qid = row["qid"]
            if qid in qrels:
                raise ValueError(f"{name}: duplicate qid {qid}")
            missing = [d for d in row["relevant"] if d not in by_id]
            if missing or not row["relevant"]:
                raise ValueError(f"{name}: {qid}: relevant ids not in the bundled corpus: {missing}")
            queries.append({"_id": qid, "text": row["text"], "lang": row["lang"], "written_from": stem})
            qrels[qid] = {d: 1 for d in row["relevant"]}
            for d in row["relevant"]:
                targets[f"{source_name(by_id[d])} ({by_id[d]['language']})"] += 1
                group = dup_groups[record_key(by_id[d])]
                if len(group) > 1:
                    twins.append(f"{d} = {', '.join(i for i in group if i != d)}")
        per_file[stem] = {
            "queries": len(rows),
            "lang": dict(sorted(Counter(r["lang"] for r in rows).items())),
            "targets": dict(sorted(targets.items())),
            "dev": sum(is_dev(r["qid"]) for r in rows),
            "test": sum(not is_dev(r["qid"]) for r in rows),
            "read_field": sorted({k for r in rows for k in r if k.startswith("read_")}),
            "words": describe([len(r["text"].split()) if r["lang"] == "en" else len(r["text"]) for r in rows]),
        }
    queries.sort(key=lambda q: q["_id"])
    facts = {"files": per_file, "twins": twins,
             "by_lang": dict(sorted(Counter(q["lang"] for q in queries).items()))}
    return LabelledSet("crosslingual", queries, qrels, None, facts)


# ---------------------------------------------------------------- the whole build


def build(out: Path, sample: Path = SAMPLE, written: Path = WRITTEN) -> dict[str, Any]:
    """Write every set under ``out``; returns the numbers printed and used in the cards."""
    records = sorted(read_jsonl(sample / "patents.jsonl.gz"), key=lambda r: r["id"])
    dup_groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        dup_groups[record_key(r)].append(r["id"])

    bundled = [corpus_doc(r) for r in records]
    bundled_gz = gzip_bytes(jsonl_bytes(bundled))
    write_bytes(out / BUNDLED, bundled_gz)
    by_lang = Counter(d["language"] for d in bundled)
    same_text = sum(len(g) - 1 for g in dup_groups.values())
    corpus_facts = {"docs": len(bundled), "bytes": len(bundled_gz), "by_lang": dict(sorted(by_lang.items())),
                    "by_source": dict(sorted(Counter(source_name(r) for r in records).items())),
                    "same_text": same_text}

    sets = [
        build_known_item(records, dup_groups),
        build_classification(records, dup_groups),
        build_crosslingual(records, dup_groups, written),
    ]
    summary: dict[str, Any] = {"corpus": corpus_facts, "sets": {}}
    for s in sets:
        folder = out / s.name
        if s.corpus is None:
            write_symlink(folder / "corpus.jsonl.gz", BUNDLED_LINK)
            corpus_info = {"docs": corpus_facts["docs"], "bytes": corpus_facts["bytes"], "own": False}
        else:
            data = gzip_bytes(jsonl_bytes(s.corpus))
            write_bytes(folder / "corpus.jsonl.gz", data)
            corpus_info = {"docs": len(s.corpus), "bytes": len(data), "own": True}
        write_bytes(folder / "queries.jsonl", jsonl_bytes(s.queries))
        write_bytes(folder / "qrels" / "dev.tsv", qrels_tsv(s.qrels, s.split_ids(dev=True)))
        write_bytes(folder / "qrels" / "test.tsv", qrels_tsv(s.qrels, s.split_ids(dev=False)))
        info = {**s.summary(), "corpus": corpus_info, "facts": s.facts}
        write_bytes(folder / "CARD.md", cards.render(s.name, info, corpus_facts).encode("utf-8"))
        summary["sets"][s.name] = info
    write_bytes(out / "README.md", cards.readme(summary).encode("utf-8"))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.datasets.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "datasets",
                        help="folder to write the sets into (default: eval/datasets)")
    args = parser.parse_args(argv)
    summary = build(args.out)
    c = summary["corpus"]
    print(f"corpus/bundled.jsonl.gz: {c['docs']} documents, {c['bytes'] / 1e6:.2f} MB")
    for name, info in summary["sets"].items():
        own = f"own corpus {info['corpus']['docs']} docs, {info['corpus']['bytes'] / 1e6:.2f} MB" \
            if info["corpus"]["own"] else "bundled corpus"
        print(f"{name}: {info['queries']} queries (dev {info['dev']['queries']}, test {info['test']['queries']}), "
              f"grades {info['grades']}, {own}")


if __name__ == "__main__":
    main()
