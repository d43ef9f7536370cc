"""The evaluation harness: BEIR folders made by hand, metrics against hand arithmetic, bad files, the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.beir import DatasetError, load_dataset
from eval.evaluate import evaluate_config
from eval.metrics import score
from eval.runner import EvalConfig, Workspaces
from eval.trec import read_run
from matcher.records import Patent

ROOT = Path(__file__).resolve().parent.parent

# Ids this project has never seen; real patent titles/abstracts in both languages.
CORPUS = [
    {"_id": "doc:alpha-1", "title": "一种锂离子电池正极材料的制备方法",
     "text": "以磷酸铁锂为正极材料，包覆碳层提高导电性。"},
    {"_id": "doc:alpha-2", "title": "一种锂电池隔膜", "text": "聚乙烯隔膜涂覆陶瓷层，提高电池安全性。",
     "ipc": ["H01M50/449"]},
    {"_id": "doc:beta-1", "title": "Thread group scheduler for a parallel processor",
     "text": "A scheduler assigns thread groups to streaming multiprocessors of a graphics processor."},
    {"_id": "doc:beta-2", "title": "Memory controller with refresh scheduling",
     "text": "A DRAM controller schedules refresh commands to reduce latency."},
    {"_id": "doc:gamma-1", "title": "一种抗起球针织围巾", "text": "通过低捻纱线与后整理工艺减少针织围巾起球。"},
    {"_id": "doc:gamma-2", "title": "", "text": "一种石墨烯散热膜，用于手机芯片散热。"},
]
QUERIES = [
    {"_id": "q-1", "text": "锂电池 正极材料"},
    {"_id": "q-2", "text": "graphics processor thread scheduling"},
    {"_id": "q-3", "text": "针织围巾 起球"},
]
QRELS = ("query-id\tcorpus-id\tscore\n"
         "q-1\tdoc:alpha-1\t2\nq-1\tdoc:alpha-2\t1\nq-2\tdoc:beta-1\t1\nq-3\tdoc:gamma-1\t1\n")


def make_set(root: Path, corpus: list[dict] | None = None, queries: list[dict] | None = None,
             qrels: str = QRELS, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (corpus or CORPUS))
    if gz:
        import gzip

        with gzip.open(root / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
            f.write(body)
    else:
        (root / "corpus.jsonl").write_text(body, encoding="utf-8")
    lines = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in (queries or QUERIES))
    (root / "queries.jsonl").write_text(lines, encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def private_vector_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "vectors.sqlite"
    monkeypatch.setenv("PMATCH_VECTOR_CACHE", str(path))
    return path


def test_metrics_against_hand_arithmetic() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"x": 2, "y": 1}}
    run = {"q1": {"b": 3.0, "a": 2.0, "c": 1.0}, "q2": {"y": 2.0, "z": 1.5, "x": 1.0}}
    means, per = score(qrels, run)
    assert per["q1"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert per["q1"]["mrr@10"] == pytest.approx(1 / 2)
    assert per["q1"]["map@100"] == pytest.approx(1 / 2)
    assert per["q1"]["recall@10"] == 1.0
    # q2: linear graded gains as in trec_eval/BEIR: y (1) at rank 1, x (2) at rank 3; ideal: x then y
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert per["q2"]["ndcg@10"] == pytest.approx(dcg / idcg)
    assert per["q2"]["map@100"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert means["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)


def test_single_metric() -> None:
    means, per = score({"q1": {"a": 1}}, {"q1": {"b": 1.0, "a": 0.5}}, ["ndcg@10"])
    assert means == {"ndcg@10": pytest.approx(1 / math.log2(3))} and set(per["q1"]) == {"ndcg@10"}


def test_empty_answer_counts_as_zero() -> None:
    means, per = score({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {"a": 1.0}, "q2": {}})
    assert per["q2"]["ndcg@10"] == 0.0 and means["ndcg@10"] == pytest.approx(0.5)


def test_hand_made_set_bm25_and_hybrid(tmp_path: Path) -> None:
    dataset = load_dataset(make_set(tmp_path / "set", gz=True))
    assert dataset.split == "test" and len(dataset.corpus) == 6
    workspaces = Workspaces(tmp_path / "ws")
    result, run = evaluate_config(dataset, EvalConfig(mode="bm25"), workspaces)
    assert next(iter(run["q-1"])) == "doc:alpha-1"
    assert next(iter(run["q-2"])) == "doc:beta-1"
    assert result["metrics"]["mrr@10"] == pytest.approx(1.0)
    assert set(result["per_query"]) == {"q-1", "q-2", "q-3"}
    hybrid, hrun = evaluate_config(dataset, EvalConfig(mode="hybrid", model="static-64"), workspaces)
    assert hybrid["config"]["ranker"]["dense_model"] == "static-64" and hrun["q-1"]
    ref, _ = evaluate_config(dataset, EvalConfig(mode="rank-bm25"), workspaces)
    assert ref["metrics"] == pytest.approx(result["metrics"])  # same formula, same tokens
    workspaces.close()


def test_second_run_does_not_re_embed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      private_vector_cache: Path) -> None:
    dataset = load_dataset(make_set(tmp_path / "set"))
    first = Workspaces(tmp_path / "ws1")
    evaluate_config(dataset, EvalConfig(mode="dense", model="static-64"), first)
    from indexes.embedders import load_embedder
    from indexes.vector_cache import VectorCache

    embedder = load_embedder("static-64")
    with VectorCache(private_vector_cache) as cache:
        assert cache.count(embedder.fingerprint) == len(CORPUS)

    def no_documents(*args: object, **kwargs: object) -> None:
        raise AssertionError("documents were embedded again")

    monkeypatch.setattr(type(embedder), "encode_documents", no_documents)
    second = Workspaces(tmp_path / "ws2")  # a fresh index over the same corpus
    result, _ = evaluate_config(dataset, EvalConfig(mode="dense", model="static-64"), second)
    assert result["queries"] == 3


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"queries": [{"_id": "q-1", "text": "x"}, {"_id": "q-2"}]}, r"queries\.jsonl:2: text: missing"),
        ({"queries": [{"_id": "q-1", "text": "x"}, {"_id": "q-1", "text": "y"}]}, r"queries\.jsonl:2: _id: duplicate"),
        ({"qrels": "q-1\tdoc:alpha-1\n"}, r"test\.tsv:1: expected 3 columns"),
        ({"qrels": "q-1\tdoc:alpha-1\thigh\n"}, r"test\.tsv:1: score: not an integer"),
        ({"qrels": "q-9\tdoc:alpha-1\t1\n"}, r"test\.tsv:1: query-id: 'q-9' is not in queries\.jsonl"),
        ({"qrels": "q-1\tdoc:nowhere\t1\n"}, r"test\.tsv:1: corpus-id: 'doc:nowhere' is not in the corpus"),
        ({"corpus": [*CORPUS, CORPUS[0]]}, r"corpus\.jsonl:7: _id: duplicate id 'doc:alpha-1'"),
        ({"qrels": ""}, r"test\.tsv: no judgments"),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path: Path, broken: dict, message: str) -> None:
    path = make_set(tmp_path / "bad", corpus=broken.get("corpus"), queries=broken.get("queries"),
                    qrels=broken.get("qrels", QRELS))
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_truncated_queries_file(tmp_path: Path) -> None:
    path = make_set(tmp_path / "bad")
    (path / "queries.jsonl").write_text('{"_id": "q-1", "text": "x"}\n{"_id": "q-2", "te', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"queries\.jsonl:2: invalid JSON"):
        load_dataset(path)
    with pytest.raises(DatasetError, match="no corpus"):
        load_dataset(tmp_path)


@pytest.mark.e2e
def test_cli_eval_writes_results_and_trec_run(tmp_path: Path) -> None:
    data = make_set(tmp_path / "set")
    out, run_out = tmp_path / "results.json", tmp_path / "run.trec"
    env = {**os.environ, "PMATCH_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "eval", "--data", str(data), "--mode", "bm25",
                           "--out", str(out), "--run-out", str(run_out)], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["label"] == "bm25" and set(result["metrics"]) >= {"ndcg@10", "recall@100", "mrr@10", "map@100"}
    lines = run_out.read_text().splitlines()
    assert lines and all(len(line.split()) == 6 and line.split()[1] == "Q0" for line in lines)
    # the TREC file scores the same as the harness did
    again, _ = score({"q-1": {"doc:alpha-1": 2, "doc:alpha-2": 1}, "q-2": {"doc:beta-1": 1},
                      "q-3": {"doc:gamma-1": 1}}, read_run(run_out))
    assert again == pytest.approx(result["metrics"])
    bad = subprocess.run([sys.executable, "-m", "api.cli", "eval", "--data", str(tmp_path)], capture_output=True,
                         text=True, env=env, cwd=ROOT)
    assert bad.returncode == 1 and "no corpus" in bad.stderr and "Traceback" not in bad.stderr


def test_a_run_lists_folded_near_duplicates_where_they_are_shown() -> None:
    """``shown_run``: each result, then the near-duplicates folded under it, in that order; a target folded under
    its twin at rank 1 is found at rank 2, and what came after the group moves down."""
    from eval.runner import shown_run
    from matcher.results import Result

    def hit(doc_id: str, rank: int, score: float, dups: list[str]) -> Result:
        return Result(id=doc_id, rank=rank, score=score, record=Patent(id=doc_id, title=doc_id, language="zh"),
                      duplicates=dups)

    results = [hit("a", 1, 0.9, ["b", "c"]), hit("d", 2, 0.6, []), hit("e", 3, 0.3, ["f"])]
    run = shown_run(results)
    assert list(run) == ["a", "b", "c", "d", "e", "f"]
    assert run["a"] == 0.9 and run["b"] == pytest.approx(0.8) and run["c"] == pytest.approx(0.7)
    assert run["d"] == 0.6 and run["e"] == 0.3 and 0.3 - 1e-6 < run["f"] < 0.3
    assert list(shown_run(results, depth=4)) == ["a", "b", "c", "d"]
    # the metric reads that order: target b at rank 2 is 1/log2(3); target d, pushed from 2 to 4, is 1/log2(5)
    _, per = score({"q1": {"b": 1}, "q2": {"d": 1}}, {"q1": run, "q2": run}, ["ndcg@10"])
    assert per["q1"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert per["q2"]["ndcg@10"] == pytest.approx(1 / math.log2(5))
