"""One labelled set in the BEIR layout and what every set builder shares: the set (queries, graded qrels, its own
corpus or the bundled one, facts for its card) with its fixed dev/test split and summary; a sample record as a BEIR
document; and deterministic reading and writing (sorted rows, gzip with ``mtime=0`` and no file name)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matcher.records import Patent
from matcher.store import dedup_key

Row = dict[str, Any]
Qrels = dict[str, dict[str, int]]


# ---------------------------------------------------------------- reading and writing


def read_jsonl(path: Path) -> list[Row]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for line in fh if line.strip()]


def dumps(row: Row) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def jsonl_bytes(rows: Iterable[Row]) -> bytes:
    return "".join(dumps(r) + "\n" for r in rows).encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(target, path)


def is_dev(query_id: str) -> bool:
    """The fixed split: ~30% of queries are dev, the rest test, decided by the query id alone."""
    return int(hashlib.sha1(query_id.encode("utf-8")).hexdigest(), 16) % 10 < 3


def qrels_tsv(qrels: Qrels, query_ids: Iterable[str]) -> bytes:
    lines = ["query-id\tcorpus-id\tscore"]
    for qid in sorted(query_ids):
        for doc_id, grade in sorted(qrels[qid].items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{qid}\t{doc_id}\t{grade}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------- the bundled corpus

_SKIP = {"id", "title", "abstract", "keywords"}
CORPUS_EXTRA_FIELDS = tuple(name for name in Patent.model_fields if name not in _SKIP)


def corpus_doc(record: Row) -> Row:
    """A sample record as a BEIR document: ``_id``, ``title``, ``text`` = abstract, then the other Patent fields
    under their own names (empty ones left out). ``keywords`` is never copied: the known-item queries are made
    of them."""
    unknown = set(record) - set(Patent.model_fields)
    if unknown:
        raise ValueError(f"{record.get('id')}: fields not in the Patent model: {sorted(unknown)}")
    doc: Row = {"_id": record["id"], "title": record.get("title", ""), "text": record.get("abstract", "")}
    for name in CORPUS_EXTRA_FIELDS:
        value = record.get(name)
        if value is not None and value != "" and value != []:
            doc[name] = value
    return doc


def source_name(record: Row) -> str:
    """Short source label from ``source`` (``kppatent_zh/test_data_TAC.json#12`` -> ``kppatent_tac``)."""
    src = str(record.get("source", "")).split("#")[0]
    if src.startswith("kppatent_zh/test_data_TAC"):
        return "kppatent_tac"
    if src.startswith("kppatent_zh/data_A"):
        return "kppatent_a"
    if src.startswith("cn_ipc_titles/"):
        return "cn_ipc_titles"
    if src.startswith("zhibei_market/"):
        return "zhibei_offers"
    if src.startswith("uspto_nvidia/"):
        return "uspto_nvidia"
    return src.split("/")[0] or "unknown"


# ---------------------------------------------------------------- one labelled set


@dataclass
class LabelledSet:
    name: str
    queries: list[Row]  # sorted by _id
    qrels: Qrels
    corpus: list[Row] | None  # None: the set uses the bundled corpus (symlink)
    facts: dict[str, Any] = field(default_factory=dict)  # set-specific numbers for the card

    def split_ids(self, dev: bool) -> list[str]:
        return sorted(q["_id"] for q in self.queries if q["_id"] in self.qrels and is_dev(q["_id"]) == dev)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queries": len(self.queries)}
        for split, dev in (("dev", True), ("test", False)):
            ids = self.split_ids(dev)
            grades = Counter(g for qid in ids for g in self.qrels[qid].values())
            sizes = [len(self.qrels[qid]) for qid in ids]
            out[split] = {
                "queries": len(ids),
                "qrels": sum(sizes),
                "grades": dict(sorted(grades.items(), reverse=True)),
                "relevant_per_query": describe(sizes),
            }
        sizes = [len(docs) for docs in self.qrels.values()]
        out["relevant_per_query"] = describe(sizes)
        out["grades"] = dict(sorted(Counter(g for d in self.qrels.values() for g in d.values()).items(), reverse=True))
        return out


def describe(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {"min": min(values), "median": float(statistics.median(values)),
            "mean": round(statistics.fmean(values), 1), "max": max(values)}


def numbered(prefix: str, n: int, width: int) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def record_key(record: Row) -> str:
    """The key under which records with the same title and abstract are one (``matcher.store.dedup_key``)."""
    return dedup_key(record.get("title", ""), record.get("abstract", ""))
