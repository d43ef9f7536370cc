"""BM25 index: a 4-document corpus by hand, save/load round trip, masks, and parity with rank-bm25."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Plus

from indexes.analyzer import AnalyzerConfig, get_analyzer
from indexes.bm25 import BM25Index, top_k
from matcher.records import Patent
from matcher.texts import indexed_text

DOCS = {
    "a": "锂离子电池正极材料及其制备方法",
    "b": "Graphics processor thread scheduling",
    "c": "石墨烯散热膜",
    "d": "一种电池隔膜 battery separator",
}


@pytest.fixture(scope="module")
def small() -> BM25Index:
    return BM25Index.build(list(DOCS), list(DOCS.values()))


def test_four_documents(small: BM25Index) -> None:
    assert small.search("锂离子电池 正极")[0].id == "a"
    assert [h.id for h in small.search("thread scheduling")] == ["b"]
    assert {h.id for h in small.search("电池")} == {"a", "d"}
    assert small.search("quantum teleportation") == []  # no query term in the vocabulary: nothing, not noise
    assert all(h.score > 0 for h in small.search("battery 电池"))


def test_mask_restricts_results(small: BM25Index) -> None:
    allowed = np.array([False, True, True, True])
    assert [h.id for h in small.search("电池", allowed=allowed)] == ["d"]
    assert small.search("电池", allowed=np.zeros(4, dtype=bool)) == []
    with pytest.raises(ValueError, match="boolean mask"):
        small.search("电池", allowed=np.ones(3, dtype=bool))


def test_save_load_round_trip(small: BM25Index, tmp_path) -> None:
    path = small.save(tmp_path / "idx")
    loaded = BM25Index.load(path, mmap=True)
    assert loaded.ids == small.ids and loaded.manifest == small.manifest
    for q in ("电池", "graphics thread", "石墨烯 散热"):
        assert loaded.search(q) == small.search(q)
    assert loaded.manifest["format_version"] == 2 and loaded.manifest["doc_count"] == 4
    assert loaded.manifest["analyzer"]["user_dict"] == "patent_zh"
    # saving again over the same folder replaces it whole
    BM25Index.build(["x"], ["石墨烯"]).save(path)
    assert BM25Index.load(path).ids == ["x"]


def test_load_refuses_other_formats(small: BM25Index, tmp_path) -> None:
    path = small.save(tmp_path / "idx")
    manifest = (path / "manifest.json").read_text().replace('"format_version": 2', '"format_version": 99')
    (path / "manifest.json").write_text(manifest)
    with pytest.raises(ValueError, match="not readable by this build"):
        BM25Index.load(path)
    with pytest.raises(FileNotFoundError):
        BM25Index.load(tmp_path / "nowhere")


def test_build_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unique"):
        BM25Index.build(["a", "a"], ["x", "y"])
    with pytest.raises(ValueError, match="no documents"):
        BM25Index.build([], [])
    with pytest.raises(ValueError, match="unknown BM25 parameters"):
        BM25Index.build(["a"], ["x"], params={"k3": 1})


def test_top_k_breaks_ties_by_position() -> None:
    assert list(top_k(np.array([0.0, 2.0, 1.0, 2.0, 0.5]), 3)) == [1, 3, 2]
    assert list(top_k(np.array([0.0, 0.0]), 5)) == []


def test_parity_with_rank_bm25_on_real_patents(sample_patents: list[Patent]) -> None:
    """Same tokens, same BM25+ parameters: same top-10 and scores within 1e-6 (scores in float64)."""
    zh = [p for p in sample_patents if p.language == "zh" and p.abstract][:250]
    en = [p for p in sample_patents if p.language == "en"][:150]
    docs = zh + en
    config = AnalyzerConfig()
    tokens = get_analyzer(config).tokenize_many([indexed_text(p) for p in docs])
    params = {"k1": 1.5, "b": 0.75, "delta": 1.0}
    ours = BM25Index.build_from_tokens([p.id for p in docs], tokens, config, params)
    reference = BM25Plus(tokens, k1=1.5, b=0.75, delta=1.0)
    queries = [p.title or p.abstract[:30] for p in docs[::20]] + ["锂离子电池 正极材料", "graphics processor thread"]
    compared = 0
    for q in queries:
        terms = ours.query_terms(q)
        if not terms:
            continue
        expected = np.asarray(reference.get_scores(terms))
        got = ours.full_scores(terms)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        ref_top = [docs[i].id for i in np.lexsort((np.arange(len(docs)), -np.round(expected, 6)))[:10]]
        assert [h.id for h in ours.search_terms(terms, 10)] == ref_top[: len(ours.search_terms(terms, 10))]
        compared += 1
    assert compared >= 20


def test_id_lookup_finds_exactly_the_ids_a_segment_holds(tmp_path, sample_patents: list[Patent]) -> None:
    """``find_positions`` (binary search in the saved id lookup) agrees with the segment's own ids, for ids it
    holds (Chinese and English, first and last in byte order) and ids it does not (prefixes, other collections)."""
    from indexes.bm25_segment import BM25Segment, find_positions

    records = sample_patents[:300]
    ids = [p.id for p in records] + ["专利-α", "z" * 40]
    texts = [indexed_text(p) for p in records] + ["锂电池 正极", "lithium cathode"]
    index = BM25Index.build(ids, texts, AnalyzerConfig())
    folder = index.segments[0].save(tmp_path / "seg")
    loaded = BM25Segment.load(folder)
    wanted = set(ids[::7]) | {ids[-1], ids[-2], ids[0][:-1], ids[0] + "x", "", "not-there"}
    found = find_positions(folder, wanted)
    assert found == {doc_id: loaded.ids.index(doc_id) for doc_id in wanted if doc_id in loaded.ids}
    assert find_positions(folder, set()) == {}
    for name in ("ids.order.npy",):
        (folder / name).unlink()
    assert find_positions(folder, wanted) is None  # an older segment: the caller reads ids.json instead
