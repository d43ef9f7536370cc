"""The labelled evaluation sets in eval/datasets (written by ``python -m eval.datasets.build``).

Checks the committed files (layout, parsing, ids that resolve, disjoint splits, no keyphrases in the corpus, no
classification query inside its own corpus) and that a fresh build reproduces them byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from eval.datasets.build import BUNDLED_LINK, build
from matcher.records import Patent
from matcher.store import dedup_key

pytestmark = pytest.mark.data

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "eval" / "datasets"
SETS = ("known_item_zh", "classification", "crosslingual")
OWN_CORPUS = {"classification"}
WRITTEN = sorted((DATASETS / "crosslingual").glob("written_*.jsonl"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    lines = path.read_text("utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore", path
    out: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        qid, doc_id, score = line.split("\t")
        assert doc_id not in out.get(qid, {}), f"{path}: {qid} {doc_id} listed twice"
        out.setdefault(qid, {})[doc_id] = int(score)
    return out


def is_dev(qid: str) -> bool:
    return int(hashlib.sha1(qid.encode("utf-8")).hexdigest(), 16) % 10 < 3


_CORPORA: dict[Path, list[dict[str, Any]]] = {}


def corpus(name: str) -> list[dict[str, Any]]:
    path = (DATASETS / name / "corpus.jsonl.gz").resolve()
    if path not in _CORPORA:
        _CORPORA[path] = read_jsonl(path)
    return _CORPORA[path]


@pytest.mark.parametrize("name", SETS)
def test_set_has_its_files(name: str) -> None:
    folder = DATASETS / name
    for rel in ("queries.jsonl", "qrels/dev.tsv", "qrels/test.tsv", "corpus.jsonl.gz", "CARD.md"):
        assert (folder / rel).exists(), f"{name}/{rel} missing"
    link = folder / "corpus.jsonl.gz"
    if name in OWN_CORPUS:
        assert not link.is_symlink() and link.is_file()
    else:
        assert link.is_symlink() and os.readlink(link) == BUNDLED_LINK
        assert link.resolve() == (DATASETS / "corpus" / "bundled.jsonl.gz").resolve()
    assert (DATASETS / "README.md").is_file()


@pytest.mark.parametrize("name", SETS)
def test_queries_and_qrels_resolve_and_splits_are_disjoint(name: str) -> None:
    folder = DATASETS / name
    queries = read_jsonl(folder / "queries.jsonl")
    qids = [q["_id"] for q in queries]
    assert len(qids) == len(set(qids)), "duplicate query ids"
    assert qids == sorted(qids)
    assert all(isinstance(q["text"], str) and q["text"].strip() for q in queries)
    assert {q["lang"] for q in queries} <= {"zh", "en"}

    doc_ids = {d["_id"] for d in corpus(name)}
    dev, test = read_qrels(folder / "qrels" / "dev.tsv"), read_qrels(folder / "qrels" / "test.tsv")
    assert dev and test
    assert not set(dev) & set(test), "a query is in both splits"
    judged = set(dev) | set(test)
    assert judged <= set(qids), "qrels name a query that queries.jsonl lacks"
    assert judged == set(qids), "every query of these sets has judgments"  # no unjudged queries here
    for split, qrels, dev_flag in (("dev", dev, True), ("test", test, False)):
        for qid, docs in qrels.items():
            assert is_dev(qid) == dev_flag, f"{qid} is in the wrong split ({split})"
            missing = set(docs) - doc_ids
            assert not missing, f"{name} {split} {qid}: not in the corpus: {sorted(missing)[:5]}"
            assert all(g in (1, 2) for g in docs.values())


def test_bundled_corpus_has_every_record_and_no_keywords() -> None:
    docs = corpus("known_item_zh")
    ids = [d["_id"] for d in docs]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    with gzip.open(ROOT / "data" / "sample" / "patents.jsonl.gz", "rt", encoding="utf-8") as fh:
        sample_ids = sorted(json.loads(line)["id"] for line in fh)
    assert ids == sample_ids
    allowed = {"_id", "title", "text"} | set(Patent.model_fields) - {"id", "title", "abstract", "keywords"}
    for d in docs:
        assert "keywords" not in d
        assert set(d) <= allowed, d["_id"]
        assert isinstance(d["title"], str) and isinstance(d["text"], str)
        assert all(v not in (None, "", []) for k, v in d.items() if k not in ("title", "text"))


def test_known_item_queries_are_keyphrases_with_one_target() -> None:
    folder = DATASETS / "known_item_zh"
    queries = read_jsonl(folder / "queries.jsonl")
    assert len(queries) == 1000
    for q in queries:
        phrases = q["text"].split(" ")
        assert len(phrases) >= 3 and all(len(p) >= 2 for p in phrases)
    qrels = read_qrels(folder / "qrels" / "dev.tsv") | read_qrels(folder / "qrels" / "test.tsv")
    assert all(len(docs) == 1 for docs in qrels.values())


def test_classification_corpus_excludes_its_query_documents() -> None:
    folder = DATASETS / "classification"
    queries = read_jsonl(folder / "queries.jsonl")
    docs = corpus("classification")
    ids = {d["_id"] for d in docs}
    keys = {dedup_key(d["title"], d["text"]) for d in docs}
    bundled = {d["_id"]: d for d in corpus("known_item_zh")}
    for q in queries:
        src = bundled[q["query_doc"]]
        assert q["query_doc"] not in ids
        assert dedup_key(src["title"], src["text"]) not in keys, f"an exact twin of {q['query_doc']} is in the corpus"
    qrels = read_qrels(folder / "qrels" / "dev.tsv") | read_qrels(folder / "qrels" / "test.tsv")
    assert all(1 <= len(d) <= 100 for d in qrels.values())
    assert {q["lang"] for q in queries} == {"zh", "en"}


def test_crosslingual_keeps_every_written_query() -> None:
    written = [row for path in WRITTEN for row in read_jsonl(path)]
    queries = {q["_id"]: q for q in read_jsonl(DATASETS / "crosslingual" / "queries.jsonl")}
    assert len(queries) == len(written)
    folder = DATASETS / "crosslingual"
    qrels = read_qrels(folder / "qrels" / "dev.tsv") | read_qrels(folder / "qrels" / "test.tsv")
    for row in written:
        q = queries[row["qid"]]
        assert (q["text"], q["lang"]) == (row["text"], row["lang"])
        assert qrels[row["qid"]] == dict.fromkeys(row["relevant"], 1)


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    build(tmp_path)
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() or p.is_symlink())
    assert built, "the build wrote nothing"
    for rel in built:
        fresh, committed = tmp_path / rel, DATASETS / rel
        if fresh.is_symlink():
            assert committed.is_symlink() and os.readlink(committed) == os.readlink(fresh), rel
        else:
            assert committed.is_file() and not committed.is_symlink(), rel
            assert fresh.read_bytes() == committed.read_bytes(), f"{rel} differs from a fresh build"
