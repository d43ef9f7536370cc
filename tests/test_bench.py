"""The benchmark scripts keep working (at a tiny N, no timing assertions), and the speed work behind them keeps
the results it promises: rjieba segments like jieba, the parallel BM25 build equals the serial one and bm25s's own.

The scale pipeline runs once (module fixture) as subprocesses, exactly as a developer runs it, over 300 synthetic
patents; the checks read its JSON.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest

from indexes import term_counts
from indexes.analyzer import AnalyzerConfig, get_analyzer
from indexes.bm25 import BM25Index
from matcher.records import Demand, Patent
from matcher.texts import indexed_text

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from bench.corpus import SyntheticCorpus  # noqa: E402

N = 300


def run(args: list[str], env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stderr[-4000:]}"
    return done


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout[stdout.index("{"):])


# ------------------------------------------------------------------------------------------------ corpus
def test_corpus_is_deterministic_prefix_stable_and_labelled() -> None:
    corpus = SyntheticCorpus("patents", seed=3)
    first = list(corpus.generate(40, with_vectors=True))
    again = list(SyntheticCorpus("patents", seed=3).generate(40, with_vectors=True))
    assert [r for r, _ in first] == [r for r, _ in again]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, again, strict=True))
    tail = list(corpus.generate(10, start=30))
    assert [r for r, _ in tail] == [r for r, _ in first[30:]]  # record i depends on (seed, i) only
    other = [r for r, _ in SyntheticCorpus("patents", seed=4).generate(40)]
    assert other != [r for r, _ in first]
    for i, (record, vector) in enumerate(first, 1):
        assert record["id"] == f"SYN-P-{i:07d}" and record["source"] == "synthetic"
        patent = Patent.model_validate(record)
        assert patent.abstract and patent.language in ("zh", "en")
        assert vector is not None and vector.shape == (corpus.dim,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_corpus_keeps_the_sample_shape() -> None:
    corpus = SyntheticCorpus("patents", seed=0)
    records = [r for r, _ in corpus.generate(1500)]
    en = sum(r["language"] == "en" for r in records) / len(records)
    assert 0.18 < en < 0.31  # the sample: 5,169 of 21,377 patents are English (0.24)
    assert sum(bool(r.get("ipc")) for r in records) / len(records) > 0.9  # real codes, from the template or a donor
    assert all(len(r["ipc"][0]) >= 4 for r in records if r.get("ipc"))
    mean_chars = np.mean([len(r["title"]) + len(r["abstract"]) + len(r.get("claims", "")) for r in records])
    assert 300 < mean_chars < 1200
    demands = [r for r, _ in SyntheticCorpus("demands", seed=0).generate(50)]
    assert all(r["id"].startswith("SYN-D-") and Demand.model_validate(r).description for r in demands)


def test_corpus_cli_writes_jsonl_and_vectors(tmp_path: Path) -> None:
    out, vec = tmp_path / "syn.jsonl.gz", tmp_path / "syn.npy"
    summary = last_json(run([str(BENCH / "corpus.py"), "--n", str(N), "--out", str(out), "--vectors", str(vec)]).stdout)
    assert summary["n"] == N and sum(summary["languages"].values()) == N
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == N and rows[0]["id"] == "SYN-P-0000001"
    vectors = np.load(vec)
    assert vectors.shape == (N, 512) and vectors.dtype == np.float16


# ----------------------------------------------------------------------------------- the scale pipeline
@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("scale")
    done = run([str(BENCH / "scale.py"), "--n", str(N), "--demands", "60", "--work", str(work), "--queries", "12",
                "--dense-queries", "40", "--embed-n", "8", "--embed-models", "static-64", "--push-patents", "5",
                "--stage", "ingest,bm25,rank_bm25,dense,build,hybrid,embed,shortlist"])
    report = last_json(done.stdout)
    report["_work"] = str(work)
    return report


def test_scale_report_has_machine_and_every_stage(scale: dict[str, Any]) -> None:
    assert scale["benchmark"] == "scale" and scale["n"] == N
    machine = scale["machine"]
    assert machine["cores"] >= 1 and machine["memory_gib"] > 0 and len(machine["load_average"]) == 3
    assert machine["versions"]["bm25s"] and machine["versions"]["faiss-cpu"]
    stages = scale["stages"]
    for stage in ("ingest", "bm25", "rank_bm25", "dense", "build", "hybrid", "embed", "shortlist"):
        assert stage in stages, stage
        assert "error" not in stages[stage], stages[stage]


def test_scale_ingest_and_bm25(scale: dict[str, Any]) -> None:
    ingest = scale["stages"]["ingest"]["patents"]
    assert ingest["records"] == N and ingest["inserted"] + ingest["duplicates_dropped"] == N
    assert ingest["inserted"] > 0.95 * N and ingest["write_batch_records_per_s"] > 0
    bm25 = scale["stages"]["bm25"]
    assert bm25["documents"] == ingest["inserted"]
    assert bm25["build"]["vocab_size"] > 1000 and bm25["build"]["peak_rss_mib"] > 0
    assert bm25["query"]["single"]["n"] == 12 and bm25["query"]["single"]["p99_ms"] >= bm25["query"]["single"]["p50_ms"]
    assert bm25["query"]["batch_1_thread_qps"] > 0


def test_scale_rank_bm25_agrees(scale: dict[str, Any]) -> None:
    rb = scale["stages"]["rank_bm25"]
    assert rb["queries_compared"] >= 10
    assert rb["speed_ratio_mean"] > 0
    assert rb["top10_identical_up_to_ties_fraction"] >= 0.99, rb["disagreements"]
    assert rb["top10_identical_fraction"] <= rb["top10_identical_up_to_ties_fraction"]


def test_scale_dense_kinds(scale: dict[str, Any]) -> None:
    dense = scale["stages"]["dense"]
    assert set(dense) == {"flat", "ivf_sq8", "hnsw"}
    assert dense["flat"]["recall_at_10"] == 1.0
    for kind, result in dense.items():
        assert 0.5 <= result["recall_at_10"] <= 1.0, kind
        assert result["documents"] == N and result["queries"] == 40
        assert result["single"]["p50_ms"] > 0 and result["build"]["peak_rss_mib"] > 0
        if kind != "flat":  # calibrated as the served build does: on the workspace's demand vectors
            assert result["build"]["calibration"]["method"].startswith("given query vectors"), kind


def test_scale_build_hybrid_embed_shortlist(scale: dict[str, Any]) -> None:
    stages = scale["stages"]
    assert stages["build"]["patents"]["documents"] == stages["ingest"]["patents"]["inserted"]
    assert stages["build"]["patents"]["dense_kind"] == "flat"  # auto: exact below 100k
    for variant in ("served", "default"):
        hybrid = stages["hybrid"][variant]
        assert set(hybrid["latency"]) == {"hybrid", "bm25", "dense"}
        assert hybrid["latency"]["hybrid"]["n"] == 12 and hybrid["service_memory_mib"]["VmRSS"] > 0
    served = stages["hybrid"]["served"]["env"]
    assert served["PMATCH_EMBED_THREADS"] == served["PMATCH_FAISS_THREADS"] == served["OMP_NUM_THREADS"] == "1"
    assert stages["embed"]["models"]["static-64"]["docs_per_second"] > 0
    shortlist = stages["shortlist"]
    assert "blocked" not in shortlist, shortlist
    assert shortlist["runs"][0]["patents"] == stages["build"]["patents"]["documents"]
    floors = scale["floors"]
    assert "bm25_ge_20x_rank_bm25" in floors and "index_build_le_10min" in floors


def test_scale_table_renders_the_run(scale: dict[str, Any]) -> None:
    work = Path(scale["_work"])
    table = run([str(BENCH / "scale_table.py"), str(work), str(work)]).stdout
    inserted = scale["stages"]["ingest"]["patents"]["inserted"]
    assert table.startswith(f"| figure | {inserted:,} | {inserted:,} |")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert f"| {inserted:,} | {inserted:,} |" in rows["documents stored (after exact-duplicate drop)"]
    assert "–" not in rows["hybrid p50 / p99 ms (served)"] and "KiB" in rows["store size"]
    with pytest.raises(AssertionError, match="no results"):
        run([str(BENCH / "scale_table.py"), str(work / "nowhere")])


def test_query_latency_runs_on_the_scale_workspace(scale: dict[str, Any]) -> None:
    work = Path(scale["_work"])
    env = {"PMATCH_VECTOR_CACHE": str(work / "vectors.sqlite")}
    out = last_json(run([str(BENCH / "query_latency.py"), "--home", str(work / "home"), "--repeat", "1"], env).stdout)
    assert out["documents"] == scale["stages"]["build"]["patents"]["documents"]
    assert set(out["latency"]) == {"bm25", "dense", "hybrid", "hybrid_convex"}


# -------------------------------------------------------------------------- the speed work, kept honest
def _sample_texts(sample_patents: list[Patent], n: int) -> list[str]:
    zh = [p for p in sample_patents if p.language == "zh" and p.abstract][: n // 2]
    en = [p for p in sample_patents if p.language == "en"][: n // 2]
    return [indexed_text(p) for p in zh + en]


def test_rjieba_segments_like_jieba(sample_patents: list[Patent]) -> None:
    texts = [*_sample_texts(sample_patents, 600), "他㐀㐁了", "的鿪鿫个", "𠀀𠀁电池", "鋰電池正極"]
    for mode in ("search", "accurate"):
        fast = get_analyzer(AnalyzerConfig(cjk_mode=mode))
        reference = get_analyzer(AnalyzerConfig(cjk_mode=mode, segmenter="jieba"))
        assert fast.config.segmenter == "rjieba"
        assert fast.tokenize_many(texts) == reference.tokenize_many(texts)


def test_old_manifests_keep_jieba() -> None:
    legacy = {k: v for k, v in AnalyzerConfig().to_dict().items() if k != "segmenter"}
    assert AnalyzerConfig.from_dict(legacy).segmenter == "jieba"
    assert AnalyzerConfig.from_dict(AnalyzerConfig().to_dict()).segmenter == "rjieba"
    with pytest.raises(ValueError, match="segmenter"):
        AnalyzerConfig.from_dict({**AnalyzerConfig().to_dict(), "segmenter": "pkuseg"})


def test_bm25_build_equals_bm25s_and_parallel_equals_serial(sample_patents: list[Patent],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [*_sample_texts(sample_patents, 800), "", "的 了"]  # two documents without a single term
    ids = [f"d{i}" for i in range(len(texts))]
    serial = BM25Index.build(ids, texts, workers=1)
    monkeypatch.setattr(term_counts, "PARALLEL_MIN_DOCS", 0)
    monkeypatch.setattr(term_counts, "CHUNK_DOCS", 150)
    parallel = BM25Index.build(ids, texts, workers=2)
    assert parallel.manifest["build_workers"] == 2
    one, two = serial.segments[0], parallel.segments[0]
    assert one.terms == two.terms
    for key in ("lengths", "indptr", "docs", "tf", "doc_ptr"):
        assert np.array_equal(getattr(one, key), getattr(two, key)), key
    owner = np.repeat(np.arange(len(one)), np.diff(one.doc_ptr))  # a document's terms, in any order
    assert np.array_equal(one.doc_terms[np.lexsort((one.doc_terms, owner))],
                          two.doc_terms[np.lexsort((two.doc_terms, owner))])
    # bm25s's own index over the same tokens: the same postings, and the same BM25+ scores (bm25s stores them in
    # float32; ours are computed in float64 at query time)
    tokens = get_analyzer(AnalyzerConfig()).tokenize_many(texts)
    ref = bm25s.BM25(method="bm25+", k1=1.5, b=0.75, delta=1.0, dtype="float32")
    ref.index(tokens, show_progress=False)
    for term, rid in list(ref.vocab_dict.items())[::7]:
        if term == "":
            continue
        a = slice(ref.scores["indptr"][rid], ref.scores["indptr"][rid + 1])
        docs = ref.scores["indices"][a]
        scores = serial.scores_for_terms([term])
        assert np.array_equal(np.flatnonzero(scores), np.sort(docs)), term
        np.testing.assert_allclose(scores[docs], ref.scores["data"][a], rtol=2e-6, atol=2e-6)
    assert serial.search("的 了") == [] and serial.position("d800") is not None
