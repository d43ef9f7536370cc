"""Incremental segments search exactly like a full rebuild of the same store.

Random writes (new records, changed records) and deletes on a small real corpus, each made searchable by a flush
(``update_snapshot``: a new segment, superseded and deleted positions masked), merges in between; after each step
the top-10 ids and scores of every query equal those of a full rebuild into a second workspace holding the same
records (scores within 1e-6; BM25's collection statistics are global over the segments at query time).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from indexes.bm25 import BM25Index
from indexes.bm25_segment import BM25Segment
from matcher.flush import update_snapshot
from matcher.full_build import build_snapshot
from matcher.merge import merge_segments
from matcher.records import Patent
from matcher.search import Searcher
from matcher.snapshot import SnapshotManifest
from matcher.store import Store
from matcher.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from query_latency import QUERIES


def _ranked(results: list) -> list[tuple[float, str]]:
    return [(r.score, r.id) for r in results]


def _same(a: list, b: list, tol: float = 1e-6) -> bool:
    """Equal top lists up to ties: the scores rank by rank within ``tol``, every id in both lists with the same
    score within ``tol``, and an id in one list only tied (within ``tol``) with the other list's last score, so
    only position order (which differs between a segmented snapshot and a rebuild) decided between them."""
    if len(a) != len(b):
        return False
    if any(abs(x.score - y.score) > tol for x, y in zip(a, b, strict=True)):
        return False
    sa, sb = {r.id: r.score for r in a}, {r.id: r.score for r in b}
    if any(abs(sa[i] - sb[i]) > tol for i in sa.keys() & sb.keys()):
        return False
    only = [(sa[i], b[-1].score) for i in sa.keys() - sb.keys()] + [(sb[i], a[-1].score) for i in sb.keys() - sa.keys()]
    return all(abs(x - cut) <= tol for x, cut in only)


def _rebuild_like(ws: Workspace, tmp: Path, dense: str | None, titles: str | None = None) -> Searcher:
    """A second workspace with the same records, fully built."""
    with Store(ws.store_path) as src:
        records = list(src.iter_records("patents"))
    other = Workspace(tmp)
    with Store(other.store_path) as store:
        store.write_batch("patents", records, "copy")
    build_snapshot(other, "patents", dense_model=dense, title_model=titles)
    return Searcher(other)


def _compare(ws: Workspace, tmp: Path, dense: str | None, modes: tuple[str, ...], titles: str | None = None) -> int:
    segmented, full = Searcher(ws), _rebuild_like(ws, tmp, dense, titles)
    compared = 0
    try:
        queries = [*QUERIES, "电池", "a method", "图像 识别 装置"]
        for q in queries:
            for mode in modes:
                a = segmented.search_patents(q, 10, mode=mode)  # type: ignore[arg-type]
                b = full.search_patents(q, 10, mode=mode)  # type: ignore[arg-type]
                assert _same(a, b), (q, mode, _ranked(a), _ranked(b))
                compared += 1
    finally:
        segmented.close()
        full.close()
    return compared


@pytest.mark.parametrize(("dense", "titles"), [(None, None), ("static-64", None), ("static-64", "static-64")])
def test_random_writes_and_deletes_equal_a_full_rebuild(tmp_path: Path, sample_patents: list[Patent],
                                                          dense: str | None, titles: str | None) -> None:
    """Flushes of random writes and deletions, and a merge, search like one full build of the live records: BM25,
    dense and the learned hybrid, whose title channel reads the title vectors each segment keeps."""
    rng = random.Random(17)
    pool = [p for p in sample_patents if p.abstract][:900]
    ws = Workspace(tmp_path / "seg")
    with Store(ws.store_path) as store:
        store.write_batch("patents", pool[:300], "base")
    build_snapshot(ws, "patents", dense_model=dense, title_model=titles)
    stored = {p.id for p in pool[:300]}
    nxt = 300
    modes = ("bm25",) if dense is None else ("bm25", "dense", "hybrid")
    for step in range(6):
        with Store(ws.store_path) as store:
            new = pool[nxt : nxt + rng.randint(5, 60)]
            nxt += len(new)
            changed = [p.model_copy(update={"title": p.title + " 改进型"})
                       for p in pool[:nxt] if p.id in stored and rng.random() < 0.04]
            store.write_batch("patents", new + changed, f"step{step}")
            stored = set(store.ids("patents"))  # a new record duplicating a stored one is not stored
            gone = rng.sample(sorted(stored), rng.randint(0, 15))
            store.delete("patents", gone)
            stored -= set(gone)
            assert store.count("patents") == len(stored)
        result = update_snapshot(ws, "patents", dense_model=dense, title_model=titles)
        assert result.state == "published" and not result.full, result
        assert set(result.deleted) <= set(gone)  # one written and deleted since the last flush was never indexed
        if step == 3:
            assert merge_segments(ws, "patents", dense_model=dense, force=True) is not None
        manifest = ws.current_manifest("patents")
        assert manifest is not None and manifest.doc_count == len(stored)
    manifest = ws.current_manifest("patents")
    assert manifest is not None and len(manifest.segments) >= 2 and manifest.deleted_count > 0
    if titles:
        assert_titles_are_each_records(ws, titles)
    assert _compare(ws, tmp_path / "full", dense, modes, titles) >= len(QUERIES) * len(modes)


def assert_titles_are_each_records(ws: Workspace, model: str) -> None:
    """Every live position's title vector is its own record's title embedded (positions follow flushes and merges)."""
    from indexes.embedders import load_embedder
    from matcher.served import Snapshot
    from matcher.texts import title_text

    snap = Snapshot.open("patents", ws.current_snapshot("patents"))  # type: ignore[arg-type]
    assert snap.titles is not None and snap.manifest.titles is not None and snap.manifest.titles.model == model
    assert len(snap.manifest.segments) >= 2 and snap.titles.shape == (len(snap.bm25.ids), snap.manifest.titles.dim)
    live = np.flatnonzero(snap.facets.live) if snap.facets.live is not None else np.arange(len(snap.bm25.ids))
    with Store(ws.store_path) as store:
        records = store.get_many("patents", [snap.bm25.ids[p] for p in live])
    expected = load_embedder(model).encode_documents([title_text(records[snap.bm25.ids[p]]) for p in live])
    np.testing.assert_allclose(np.asarray(snap.titles[live], dtype=np.float32), expected, atol=2e-3)


def test_segments_score_like_one_index_of_the_live_documents(sample_patents: list[Patent]) -> None:
    """BM25 alone: three segments with deletions vs one segment of the live documents, every document's score."""
    from matcher.texts import indexed_text

    docs = [p for p in sample_patents if p.abstract][:240]
    ids, texts = [p.id for p in docs], [indexed_text(p) for p in docs]
    parts = [BM25Segment.build(ids[a:b], texts[a:b]) for a, b in ((0, 100), (100, 180), (180, 240))]
    rng = np.random.default_rng(3)
    live = [rng.random(len(s)) > 0.2 for s in parts]
    segmented = BM25Index(parts, live)
    keep = np.concatenate(live)
    one = BM25Index.build([i for i, k in zip(ids, keep, strict=True) if k],
                          [t for t, k in zip(texts, keep, strict=True) if k])
    merged = BM25Index([BM25Segment.merge(list(zip(parts, live, strict=True)))])
    assert segmented.doc_count == one.doc_count == merged.doc_count
    for q in QUERIES:
        terms = one.query_terms(q)
        assert segmented.query_terms(q) == terms
        expected = one.scores_for_terms(terms)
        got = segmented.scores_for_terms(terms)
        assert np.all(got[~keep] == 0)
        np.testing.assert_array_equal(got[keep], expected)  # bit-identical
        np.testing.assert_array_equal(merged.scores_for_terms(terms), expected)
        assert [h.id for h in segmented.search(q)] == [h.id for h in one.search(q)]
        for term in terms:  # the postings a translated query's senses are weighed by: live documents only
            held = segmented.holding(term)
            assert np.all(np.diff(held) > 0) and keep[held].all()
            np.testing.assert_array_equal(held, np.flatnonzero(segmented.scores_for_terms([term]) > 0))


def test_a_write_to_an_old_format_snapshot_rebuilds_in_full(tmp_path: Path, sample_patents: list[Patent]) -> None:
    ws = Workspace(tmp_path / "ws")
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[:50], "a")
    path = build_snapshot(ws, "patents")
    raw = (path / "manifest.json").read_text().replace('"format_version": 2', '"format_version": 1')
    (path / "manifest.json").write_text(raw)
    assert ws.current_manifest("patents") is None
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[50:60], "b")
    result = update_snapshot(ws, "patents")
    assert result.full and SnapshotManifest.read(result.snapshot).doc_count == 60  # type: ignore[arg-type]


def test_a_flush_with_another_title_model_rebuilds_in_full_and_a_flush_keeps_it(tmp_path: Path,
                                                                               sample_patents: list[Patent]) -> None:
    ws = Workspace(tmp_path / "ws")
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[:50], "a")
    build_snapshot(ws, "patents")
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[50:60], "b")
    result = update_snapshot(ws, "patents", title_model="static-64")  # the snapshot has no titles: a full build
    assert result.full and SnapshotManifest.read(result.snapshot).title_model == "static-64"  # type: ignore[arg-type]
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[60:70], "c")
    result = update_snapshot(ws, "patents", title_model="static-64")
    assert not result.full and result.added  # a record duplicating a stored one is not stored
    manifest = SnapshotManifest.read(result.snapshot)  # type: ignore[arg-type]
    with Store(ws.store_path) as store:
        assert manifest.doc_count == store.count("patents")
    assert manifest.title_model == "static-64" and len(manifest.segments) == 2
    assert (ws.index_root("patents") / "segments" / manifest.segments[1].name / manifest.titles.file).is_file()  # type: ignore[union-attr]
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[70:80], "d")
    result = update_snapshot(ws, "patents")  # no title model named: the snapshot's is kept, not dropped
    assert not result.full and SnapshotManifest.read(result.snapshot).title_model == "static-64"  # type: ignore[arg-type]


def test_a_flush_finds_deletions_in_the_log_and_without_it(tmp_path: Path, sample_patents: list[Patent]) -> None:
    """Deletions reach a flush through the store's deletion log; one the log lacks (made by a store from before the
    log existed, here a raw SQL delete) is still found by comparing every id, and a re-stored id stays live. The
    base segment has no id lookup (as one saved before lookups existed); the flushed one has."""
    ws = Workspace(tmp_path / "ws")
    with Store(ws.store_path) as store:
        store.write_batch("patents", sample_patents[:40], "a")
    base = build_snapshot(ws, "patents")
    lookups = list((base.parent / "segments").glob("*/bm25/ids.order.npy"))
    assert len(lookups) == 1
    lookups[0].unlink()  # a segment saved before segments kept an id lookup: the flush reads its ids instead
    logged, unlogged, back = sample_patents[0].id, sample_patents[1].id, sample_patents[2].id
    with Store(ws.store_path) as store:
        store.delete("patents", [logged, back])
        store.write_batch("patents", [sample_patents[2]], "again")
        assert store.deleted_since("patents", 0) == [logged]  # the re-stored one is not gone
    result = update_snapshot(ws, "patents")
    assert result.deleted == [logged] and result.added == [back]
    with Store(ws.store_path) as store:
        assert store.deleted_since("patents", 0) == []  # forgotten once a snapshot covers them
        with store.transaction() as db:
            db.execute("DELETE FROM patents WHERE id=?", (unlogged,))
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='data_version'")
    result = update_snapshot(ws, "patents")
    assert result.deleted == [unlogged]
    searcher = Searcher(ws)
    live = {r.id for r in searcher.search_patents(sample_patents[1].title, k=50, mode="bm25")}
    assert unlogged not in live and logged not in live
    assert back in {r.id for r in searcher.search_patents(sample_patents[2].title, k=50, mode="bm25")}
    with Store(ws.store_path) as store:
        store.delete("patents", [sample_patents[3].id])
        assert store.deleted_since("patents", 0) == [sample_patents[3].id]
    build_snapshot(ws, "patents")  # a full build covers the deletion too: the log is forgotten
    with Store(ws.store_path) as store:
        assert store.deleted_since("patents", 0) == []


def test_title_vectors_of_another_model_build_are_refused_in_both_languages(tmp_path: Path,
                                                                          sample_patents: list[Patent]) -> None:
    from matcher.config import RankerConfig
    from matcher.search import NotIndexed

    ws = Workspace(tmp_path / "ws")
    with Store(ws.store_path) as store:
        store.write_batch("patents", [p for p in sample_patents if p.abstract][:40], "a")
    path = build_snapshot(ws, "patents", dense_model="static-64", title_model="static-64")
    manifest = path / "manifest.json"
    raw = manifest.read_text("utf-8")
    fingerprint = SnapshotManifest.read(path).titles.fingerprint  # type: ignore[union-attr]
    manifest.write_text(raw.replace(fingerprint, "0" * len(fingerprint)), "utf-8")
    searcher = Searcher(ws, RankerConfig(dense_model="static-64", title_model="static-64"))
    try:
        with pytest.raises(NotIndexed) as caught:
            searcher.search_patents("锂离子电池", k=5)
        assert "title vectors" in caught.value.message("en") and "标题向量" in caught.value.message("zh")
        assert "--full" in caught.value.message("en")
    finally:
        searcher.close()
