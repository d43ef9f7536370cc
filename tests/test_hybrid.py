"""Hybrid search, explanations and matching on a small real corpus (tiny static model; one test on the default)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from matcher.config import RankerConfig
from matcher.filters import DemandFilters, PatentFilters
from matcher.full_build import build_snapshot
from matcher.i18n import text
from matcher.matching import UnknownRecord, match_demand, match_patent, match_portfolio, portfolio_ids
from matcher.records import Demand, Patent
from matcher.search import MinScoreError, Searcher
from matcher.store import Store
from matcher.texts import query_languages, sentences
from matcher.workspace import Workspace

BATTERY = re.compile(r"电池|正极|负极|锂")


def small_corpus(patents: list[Patent]) -> list[Patent]:
    zh_battery = [p for p in patents if p.language == "zh" and BATTERY.search(p.title + p.abstract)][:60]
    zh_other = [p for p in patents if p.language == "zh" and p.abstract and p not in zh_battery][:340]
    en = [p for p in patents if p.language == "en" and p.abstract][:200]
    return zh_battery + zh_other + en


def make_workspace(root: Path, patents: list[Patent], demands: list[Demand], model: str) -> Workspace:
    ws = Workspace(root)
    with Store(ws.store_path) as store:
        store.write_batch("patents", patents, "test")
        store.write_batch("demands", demands, "test")
    for kind in ("patents", "demands"):
        build_snapshot(ws, kind, dense_model=model)  # type: ignore[arg-type]
    return ws


@pytest.fixture(scope="module")
def corpus(sample_patents: list[Patent]) -> list[Patent]:
    return small_corpus(sample_patents)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory, corpus: list[Patent],
             sample_demands: list[Demand]) -> Searcher:
    root = tmp_path_factory.mktemp("hybrid")
    ws = make_workspace(root / "home", corpus, sample_demands[:150], "static-64")
    s = Searcher(ws, RankerConfig(dense_model="static-64", candidates=50))
    yield s
    s.close()


def test_query_languages() -> None:
    assert query_languages("锂电池 正极") == {"zh"}
    assert query_languages("cathode for lithium batteries") == {"en"}
    assert query_languages("LiFePO4 正极材料") == {"zh", "en"}
    assert query_languages("18650") == {"zh", "en"}


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_returns_ranked_results(searcher: Searcher, mode: str) -> None:
    results = searcher.search_patents("锂离子电池 正极材料", k=10, mode=mode)  # type: ignore[arg-type]
    assert len(results) == 10
    assert [r.rank for r in results] == list(range(1, 11))
    assert all(a.score >= b.score for a, b in itertools.pairwise(results))
    assert len({r.id for r in results}) == 10
    expected = {"bm25": {"bm25"}, "dense": {"dense"}, "hybrid": {"bm25", "dense", "fused"}}[mode]
    assert set(results[0].retrievers) == expected


def test_shipped_config_equals_the_class_defaults() -> None:
    from matcher.config import DEFAULTS

    assert RankerConfig.model_validate_json(DEFAULTS.read_text()) == RankerConfig()


def test_hybrid_rrf_scores_are_the_fusion_of_the_reported_ranks(searcher: Searcher) -> None:
    rrf = Searcher(searcher.workspace, RankerConfig(dense_model="static-64", fusion="rrf", abstain_credit=1.0))
    k = rrf.config.rrf_k
    for r in rrf.search_patents("battery separator for lithium cells", k=20, mode="hybrid"):
        bm25, dense = r.retrievers["bm25"], r.retrievers["dense"]
        if "abstained" in bm25:  # a Chinese document for an English query: dense alone, at full weight
            assert r.record.language == "zh"
            expected = 2 / (k + dense["rank"])
        else:
            expected = sum(1 / (k + x["rank"]) for x in (bm25, dense) if x.get("rank"))
        assert r.score == pytest.approx(expected, rel=1e-9)
    rrf.close()


def test_convex_fusion_mode(searcher: Searcher) -> None:
    convex = Searcher(searcher.workspace, RankerConfig(dense_model="static-64", fusion="convex",
                                                       convex_weight_bm25=0.4))
    results = convex.search_patents("锂离子电池 正极材料", k=10)
    assert len(results) == 10 and all(0.0 <= r.score <= 1.0 for r in results)
    assert results[0].retrievers["fused"]["method"] == "convex"
    convex.close()


def test_filters_leaving_fewer_than_k(searcher: Searcher, corpus: list[Patent]) -> None:
    # an IPC group held by only a handful of the corpus's patents
    counts: dict[str, int] = {}
    for p in corpus:
        for code in p.ipc:
            counts[code] = counts.get(code, 0) + 1
    code = min((c for c, n in counts.items() if 2 <= n <= 4), key=lambda c: (counts[c], c))
    holders = {p.id for p in corpus if any(c.startswith(code) for c in p.ipc)}
    for mode in ("dense", "hybrid"):
        results = searcher.search_patents("method", k=10, filters=PatentFilters(ipc=[code]), mode=mode)  # type: ignore[arg-type]
        assert {r.id for r in results} == holders, mode  # all of them, and nothing else
    assert searcher.search_patents("method", k=10, filters=PatentFilters(ipc=["A99"]), mode="hybrid") == []


@pytest.mark.parametrize(
    "filters",
    [PatentFilters(language=["en"]), PatentFilters(language=["zh"]), PatentFilters(ipc=["G06F", "H01M"]),
     PatentFilters(applicant="NVIDIA"), PatentFilters(applicant_type=["company"]),
     PatentFilters(kind=["发明专利"]), PatentFilters(legal_status=["valid", "pending", "invalid", "unknown"])],
)
def test_every_result_satisfies_the_filters(searcher: Searcher, filters: PatentFilters) -> None:
    snap = searcher.snapshot("patents")
    allowed = {snap.bm25.ids[i] for i in np.flatnonzero(snap.facets.patent_mask(filters))}
    results = searcher.search_patents("processor memory 电池 方法", k=30, filters=filters, mode="hybrid")
    assert results and {r.id for r in results} <= allowed


def test_explanations_are_present_and_true(searcher: Searcher) -> None:
    query = "锂离子电池 正极材料 cathode"
    snap = searcher.snapshot("patents")
    terms = set(snap.bm25.query_terms(query))
    results = searcher.search_patents(query, k=8, mode="hybrid", explain=True)
    assert results
    embedder = searcher.embedder(snap)
    qv = embedder.encode_queries([query])[0]
    for r in results:
        ex = r.explanation
        assert ex is not None and ex["language"] == r.record.language
        fields = {"title": r.record.title, "abstract": r.record.abstract, "claims": r.record.claims}
        weights = [t["weight"] for t in ex["matched_terms"]]
        assert weights == sorted(weights, reverse=True)  # most informative first
        for t in ex["matched_terms"]:
            assert t["term"] in terms and t["weight"] == pytest.approx(snap.bm25.idf(t["term"]), abs=1e-3)
            for f in t["fields"]:
                assert t["term"] in snap.bm25.analyzer.tokenize(fields[f])
        for field, snip in ex["snippets"].items():
            assert snip["highlights"], field
            for start, end in snip["highlights"]:
                piece = snip["text"][start:end]
                assert set(snap.bm25.analyzer.tokenize(piece)) & terms or any(t in piece for t in terms), piece
        cs = ex["closest_sentence"]
        candidates = sentences(r.record)
        assert cs["text"] in candidates
        sims = embedder.encode_documents(candidates) @ qv
        assert cs["similarity"] == pytest.approx(float(sims.max()), abs=1e-3)
        if "abstained" not in r.retrievers["bm25"] and r.retrievers["bm25"]["rank"]:
            assert ex["matched_terms"]  # found by BM25, so it shares a term


def test_match_demand_by_id_and_inline(searcher: Searcher, sample_demands: list[Demand]) -> None:
    demand = sample_demands[0]
    got, results = match_demand(searcher, demand.id, k=5, explain=True)
    assert got.id == demand.id and len(results) == 5 and results[0].explanation is not None
    inline = Demand(id="inline-1", title="需要提高锂电池正极材料的循环寿命", description="寻求磷酸铁锂正极包覆技术")
    _, results = match_demand(searcher, inline, k=10)
    assert any(BATTERY.search(r.record.title + r.record.abstract) for r in results[:5])
    with pytest.raises(UnknownRecord):
        match_demand(searcher, "no-such-demand")


def test_match_patent_to_demands_with_filters(searcher: Searcher, corpus: list[Patent]) -> None:
    patent, results = match_patent(searcher, corpus[0].id, k=5)
    assert patent.id == corpus[0].id and results and all(isinstance(r.record, Demand) for r in results)
    _, filtered = match_patent(searcher, corpus[0].id, k=20, filters=DemandFilters(industry=["农"]))
    assert all("农" in (r.record.industry or "") for r in filtered)
    with pytest.raises(UnknownRecord):
        match_patent(searcher, "no-such-patent")


def test_portfolio_by_applicant_and_ids(searcher: Searcher, corpus: list[Patent]) -> None:
    ids = portfolio_ids(searcher, applicant="nvidia")
    nvidia = {searcher.store.resolve("patents", p.id) for p in corpus if any("NVIDIA" in a for a in p.applicants)}
    assert ids and set(ids) == nvidia
    matches = match_portfolio(searcher, ids[:5], k=5, per_patent=10)
    assert matches and all(m.demands for m in matches)
    assert all(a.score >= b.score for a, b in itertools.pairwise(matches))
    for m in matches:
        for d in m.demands:
            assert d["patents"] and all(p["patent_id"] in ids[:5] for p in d["patents"])
    with pytest.raises(UnknownRecord):
        portfolio_ids(searcher, applicant="浙江大学-no-such")
    with pytest.raises(UnknownRecord):
        portfolio_ids(searcher, ids=["nope"])


@pytest.mark.model
def test_default_model_cross_lingual(tmp_path: Path, corpus: list[Patent], sample_demands: list[Demand]) -> None:
    """The shipped default model, for real: an English query finds Chinese lithium-battery patents."""
    config = RankerConfig()
    ws = make_workspace(tmp_path / "home", corpus, sample_demands[:20], config.dense_model)
    searcher = Searcher(ws, config)
    results = searcher.search_patents("A method for preparing cathode material for lithium batteries", k=10)
    zh_battery = [r for r in results
                  if r.record.language == "zh" and BATTERY.search(r.record.title + r.record.abstract)]
    assert len(zh_battery) >= 3, [(r.id, r.record.title) for r in results]
    # the learned default reads Chinese documents through the query translated into Chinese
    assert all(r.retrievers["bm25"]["translated"] for r in zh_battery)
    assert all(r.relevance is not None and 0 <= r.relevance <= 1 for r in results)
    searcher.close()


def test_learned_fusion_translates_and_calibrates(searcher: Searcher) -> None:
    learned = Searcher(searcher.workspace, RankerConfig(dense_model="static-64", candidates=50, fusion="learned"))
    results = learned.search_patents("A method for preparing cathode material for lithium batteries", k=10)
    assert results and all(r.relevance is not None and 0 <= r.relevance <= 1 for r in results)
    assert all(a.relevance >= b.relevance for a, b in itertools.pairwise(results))  # type: ignore[operator]
    zh = [r for r in results if r.record.language == "zh"]
    assert zh and all(r.retrievers["bm25"]["translated"] for r in zh)
    floor = results[len(results) // 2].relevance
    kept = learned.search_patents("A method for preparing cathode material for lithium batteries", k=10,
                                  min_score=floor)
    assert kept and all(r.relevance >= floor for r in kept)  # type: ignore[operator]
    convex = Searcher(searcher.workspace, RankerConfig(dense_model="static-64", candidates=50, fusion="convex"))
    with pytest.raises(MinScoreError, match="min_score needs") as refused:
        convex.search_patents("battery", k=5, min_score=0.5)
    assert "校准相关度" in text(refused.value.key, "zh")  # the CLI shows it in the user's language
    with pytest.raises(MinScoreError, match=r"within \[0, 1\]"):
        learned.search_patents("battery", k=5, min_score=1.5)
    convex.close()
    learned.close()


def test_approximate_dense_index_is_calibrated_on_the_other_side(tmp_path: Path, corpus: list[Patent],
                                                                 sample_demands: list[Demand]) -> None:
    """Patents are searched with demands, demands with patents: each side's vectors calibrate the other's index."""
    ws = Workspace(tmp_path / "home")
    with Store(ws.store_path) as store:
        store.write_batch("patents", corpus, "test")
        built = build_snapshot(ws, "patents", dense_model="static-64", dense_index_type="hnsw")
        alone = dense_manifest(built)["calibration"]
        assert alone["method"].startswith("indexed vectors")  # no demands yet: self-queries
        store.write_batch("demands", sample_demands[:300], "test")
    for kind, other_count in (("patents", 300), ("demands", len(corpus))):
        path = build_snapshot(ws, kind, dense_model="static-64", dense_index_type="hnsw")  # type: ignore[arg-type]
        calibration = dense_manifest(path)["calibration"]
        assert calibration["method"].startswith("given query vectors")
        assert calibration["queries"] == min(256, other_count)


def dense_manifest(path: Path) -> dict:
    """The dense index manifest of a snapshot's (one) segment."""
    from matcher.snapshot import open_snapshot

    opened = open_snapshot(path)
    assert opened.dense is not None
    return opened.dense.manifest


def test_explaining_a_record_again_reuses_its_sentence_vectors(searcher: Searcher, corpus: list[Patent],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A patent explained for many queries (shortlists, pushes) has its sentences embedded once, through the
    workspace's vector cache; the explanation is the same as with fresh vectors."""
    from indexes.vector_cache import text_hash

    snap = searcher.snapshot("patents")
    embedder = searcher.embedder(snap)
    record = next(p for p in corpus if len(sentences(p)) >= 3)
    first = searcher.explainer(snap, "锂离子电池 正极材料")(record)
    cached = searcher.vector_cache().get_many(embedder.fingerprint, [text_hash(t) for t in sentences(record)])
    assert len(cached) == len(set(sentences(record)))
    encoded: list[int] = []
    real = embedder.encode_documents

    def counting(texts: list[str], *args: object, **kwargs: object) -> np.ndarray:
        encoded.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode_documents", counting)
    again = searcher.explainer(snap, "锂离子电池 正极材料")(record)
    other = searcher.explainer(snap, "graphics processor thread scheduling")(record)
    assert encoded == [] and first == again and other["closest_sentence"]["text"] in sentences(record)

def test_indexes_read_into_memory_answer_like_memory_maps(searcher: Searcher) -> None:
    """The service reads the indexes in (mapped pages can be evicted and re-read mid-query); same answers."""
    in_memory = Searcher(searcher.workspace, searcher.config, mmap=False)
    try:
        snap = in_memory.snapshot("patents")
        assert not isinstance(snap.dense.vectors, np.memmap)
        assert isinstance(searcher.snapshot("patents").dense.vectors, np.memmap)
        for query in ("锂离子电池 正极材料", "graphics processor thread scheduling"):
            a = [(r.id, round(r.score, 5)) for r in searcher.search_patents(query, k=10)]
            b = [(r.id, round(r.score, 5)) for r in in_memory.search_patents(query, k=10)]
            assert a == b and a
    finally:
        in_memory.close()


def test_a_pinned_view_keeps_its_snapshot_while_a_new_one_is_published(searcher: Searcher) -> None:
    """``Searcher.pinned``: one request sees one index; the owner moves on; closing the view closes nothing."""
    view = searcher.pinned(["demands"])
    before = view.snapshot("demands")
    build_snapshot(searcher.workspace, "demands", dense_model="static-64")
    assert searcher.snapshot("demands").path != before.path  # the owner sees the new snapshot
    assert view.snapshot("demands") is before  # the view still answers from the old one
    assert view.search_demands("电池", k=3) and view.store is searcher.store
    assert view.vector_cache() is searcher.vector_cache()
    view.close()
    assert searcher.store.count("demands") > 0  # the shared store is still open
