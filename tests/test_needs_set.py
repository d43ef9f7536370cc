"""The judged needs set, eval/datasets/needs (built by ``python -m eval.datasets.needs.build``).

Checks the committed set: counts per query language and half, every pooled pair judged exactly once, the
train/dev/test split a stable function of the query id with disjoint qrels files, the harness can load every
split, a rebuild from the raw files reproduces the committed files byte for byte, and malformed raw files are
refused with file:line: field: reason.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from eval.beir import load_dataset
from eval.datasets.needs.build import SPLITS, NeedsError, build, load, split_of

NEEDS = Path(__file__).resolve().parent.parent / "eval" / "datasets" / "needs"
MIN_QUERIES = {"zh": 150, "en": 150}  # per query language; each is half same-, half cross-language
BUILT = ["queries.jsonl", "CARD.md", *(f"qrels/{s}.tsv" for s in SPLITS)]


@pytest.fixture(scope="module")
def data() -> dict:
    return load(NEEDS)


def qrels(split: str) -> dict[str, dict[str, int]]:
    lines = (NEEDS / "qrels" / f"{split}.tsv").read_text("utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    out: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        qid, doc, grade = line.split("\t")
        out.setdefault(qid, {})[doc] = int(grade)
    return out


def test_counts_and_both_halves(data: dict) -> None:
    by = Counter((q["lang"], q["answer_lang"]) for q in data["queries"].values())
    for lang, minimum in MIN_QUERIES.items():
        other = "en" if lang == "zh" else "zh"
        same, cross = by[(lang, lang)], by[(lang, other)]
        assert same + cross >= minimum, (lang, same, cross)
        assert abs(same - cross) <= 1, f"{lang}: {same} same-language vs {cross} cross-language"
    ids = sorted(data["queries"])
    for lang in {q["lang"] for q in data["queries"].values()}:
        numbers = [int(q.rsplit("-", 1)[1]) for q in ids if q.startswith(f"need-{lang}-")]
        assert numbers == list(range(1, len(numbers) + 1)), f"need-{lang}-NNN ids have gaps"


def test_every_pooled_pair_judged_once(data: dict) -> None:
    for qid, pooled in data["pools"].items():
        assert sorted(data["grades"][qid]) == sorted(pooled), qid
        assert len(pooled) == len(set(pooled)), qid
        seed = data["queries"][qid]["seed"]
        found = data["found_by"].get(qid, {})
        assert any("seed" in who for who in found.values()) or seed in pooled, f"{qid}: seed not pooled"
    judged = sum(len(g) for g in data["grades"].values())
    lines = sum(1 for p in NEEDS.glob("judgments_*.jsonl") for line in p.read_text("utf-8").splitlines()
                if line.strip())
    assert judged == lines == sum(len(p) for p in data["pools"].values())


def test_blind_pool_hides_who_found_what() -> None:
    for path in NEEDS.glob("pool_*_blind.jsonl"):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            assert set(row) == {"_id", "text", "lang", "candidates"}, path
            ids = [c["id"] for c in row["candidates"]]
            assert ids == sorted(ids), row["_id"]
            assert all(set(c) == {"id", "title", "abstract", "language"} for c in row["candidates"])


def test_split_is_stable_and_qrels_disjoint(data: dict) -> None:
    # The split must never move a query: these values are sha1-derived and fixed for good.
    assert [split_of(f"need-zh-00{i}") for i in (1, 2, 3)] == ["train", "train", "train"]
    assert [split_of(f"need-en-00{i}") for i in (1, 2, 3)] == ["test", "train", "dev"]
    files = {s: qrels(s) for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not set(files[a]) & set(files[b]), (a, b)
        assert all(split_of(qid) == a for qid in files[a])
    evaluated = {q for q, g in data["grades"].items() if max(g.values()) > 0}
    assert set().union(*map(set, files.values())) == evaluated
    for split, rows in files.items():
        for qid, grades in rows.items():
            assert grades == data["grades"][qid], (split, qid)  # zeros included
    shares = Counter(split_of(q) for q in data["queries"])
    assert all(shares[s] > 0 for s in SPLITS), shares


@pytest.mark.parametrize("split", SPLITS)
def test_harness_loads_every_split(split: str) -> None:
    d = load_dataset(NEEDS, split)
    assert d.evaluated_queries() and not d.skipped_docs
    assert set(d.qrels) == set(qrels(split))


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    for path in NEEDS.iterdir():
        if path.suffix in {".jsonl", ".md"} and path.name not in {"queries.jsonl", "CARD.md"}:
            shutil.copy(path, tmp_path / path.name)
    build(tmp_path)
    for name in BUILT:
        assert (tmp_path / name).read_bytes() == (NEEDS / name).read_bytes(), f"{name} is stale: rebuild"
    assert (NEEDS / "corpus.jsonl.gz").resolve() == (NEEDS.parent / "corpus" / "bundled.jsonl.gz").resolve()


def copy_raw(tmp_path: Path) -> None:
    for pattern in ("queries_*.jsonl", "pool_*.jsonl", "judgments_*.jsonl"):
        for path in NEEDS.glob(pattern):
            shutil.copy(path, tmp_path / path.name)


def test_unjudged_pair_is_refused(tmp_path: Path) -> None:
    copy_raw(tmp_path)
    path = tmp_path / "judgments_zh.jsonl"
    lines = path.read_text("utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", "utf-8")
    with pytest.raises(NeedsError, match="1 pooled pairs have no judgment"):
        load(tmp_path)


@pytest.mark.parametrize(("edit", "message"), [
    ({"grade": 3}, r"judgments_zh.jsonl:1: grade: 3 is not 0, 1 or 2"),
    ({"corpus_id": "CN000000000X"}, r"judgments_zh.jsonl:1: corpus_id: 'CN000000000X' was not pooled"),
])
def test_bad_judgment_is_refused(tmp_path: Path, edit: dict, message: str) -> None:
    copy_raw(tmp_path)
    path = tmp_path / "judgments_zh.jsonl"
    lines = path.read_text("utf-8").splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), **edit}, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(NeedsError, match=message):
        load(tmp_path)


def test_bad_seed_is_refused(tmp_path: Path) -> None:
    copy_raw(tmp_path)
    path = tmp_path / "queries_zh.jsonl"
    lines = path.read_text("utf-8").splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "seed": "US0000000B2"}, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(NeedsError, match=r"queries_zh.jsonl:2: seed: 'US0000000B2' is not in the bundled corpus"):
        load(tmp_path)
