"""multilingual-e5-small quantised to int8 and run by onnxruntime: the same model as ``e5-small``, fast enough to
encode a query inside a search.

Measured here on one thread: a 10-token query takes 25.6 ms p50 through sentence-transformers (torch), 15 ms as
float32 ONNX and 6.4 ms as int8 ONNX, whose vectors keep cosine 0.989-0.992 with torch's (``eval/RESULTS.md``,
2026-12-04). A whole served hybrid search takes ~11 ms p50, so only the int8 model fits inside the latency floor.

``build_e5_int8(cache_dir)`` makes ``cache_dir / "e5-small-int8"`` from the rebuilt ``e5-small`` folder
(``indexes.e5_rebuild``), once: export the BertModel to ONNX (opset 17, dynamic batch and length), quantise its
weights to int8 with onnxruntime's dynamic quantisation, keep the tokenizer. Like the rebuild it is idempotent
(a marker names the source folder's marker and the tool versions), atomic (built beside the target and renamed)
and serialised by a file lock. Nothing is downloaded.

``E5Int8Model`` has the interface ``indexes.embedders.Embedder`` wraps (``encode`` with a prompt): XLM-R tokens
truncated to ``MAX_SEQ_LENGTH``, mean pooling, L2 normalisation, as the sentence-transformers folder does; one
text per run (see ``encode``).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.atomic import atomic_dir
from indexes.e5_rebuild import MAX_SEQ_LENGTH, read_marker, rebuild_e5_small
from indexes.e5_rebuild import _lock as file_lock

EXPORTER_VERSION = "1"
FOLDER_NAME = "e5-small-int8"
MARKER_NAME = "pmatch_int8.json"
MODEL_FILE = "model.int8.onnx"
OPSET = 17


def expected_marker(source: Path) -> dict[str, object]:
    import onnxruntime
    import torch

    return {"source": read_marker(source), "exporter_version": EXPORTER_VERSION, "opset": OPSET,
            "onnxruntime": onnxruntime.__version__, "torch": torch.__version__, "max_seq_length": MAX_SEQ_LENGTH}


def build_e5_int8(cache_dir: Path) -> Path:
    """Return ``cache_dir / "e5-small-int8"``, exporting and quantising it first unless its marker matches."""
    cache_dir = Path(cache_dir).expanduser()
    source = rebuild_e5_small(cache_dir)
    target = cache_dir / FOLDER_NAME
    marker = expected_marker(source)
    if read_marker(target, MARKER_NAME) == marker:
        return target
    with file_lock(cache_dir / f".{FOLDER_NAME}.lock"):
        if read_marker(target, MARKER_NAME) == marker:  # another process finished it while we waited
            return target
        with atomic_dir(target, mode=0o755) as tmp:
            _export(source, tmp)
            (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=1, sort_keys=True), encoding="utf-8")
    return target


def _export(source: Path, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import BertModel

    class LastHidden(torch.nn.Module):
        def __init__(self, bert: BertModel) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    bert = BertModel.from_pretrained(str(source), local_files_only=True).eval()
    example = torch.tensor([[0, 6, 2]], dtype=torch.int64), torch.ones((1, 3), dtype=torch.int64)
    float_model = out / "model.float.onnx"
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on BertModel's Python-side shape checks
        torch.onnx.export(LastHidden(bert), example, str(float_model), input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes})
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # quantize_dynamic logs a generic "consider pre-processing" warning
    try:
        quantize_dynamic(str(float_model), str(out / MODEL_FILE), weight_type=QuantType.QInt8)
    finally:
        quiet.setLevel(level)
    float_model.unlink()
    shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
    for path in out.rglob("*"):  # the cache may be shared
        path.chmod(0o755 if path.is_dir() else 0o644)


class E5Int8Model:
    """The int8 ONNX e5-small with sentence-transformers' ``encode`` interface (mean pooling, normalised)."""

    query_prompt = "query: "
    document_prompt = "passage: "

    def __init__(self, folder: Path, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), options,
                                                    providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self.tokenizer.no_padding()
        self.max_seq_length = MAX_SEQ_LENGTH
        self.files = [folder / MODEL_FILE, folder / "tokenizer.json"]

    def get_embedding_dimension(self) -> int:
        return 384

    def encode(self, texts: Sequence[str], prompt: str | None = None, batch_size: int = 32,
               **_: Any) -> np.ndarray:
        """(len(texts), 384) float32, L2-normalised; ``prompt`` is prepended to every text.

        One text per run, whatever ``batch_size`` says: dynamic quantisation scales each activation tensor by its
        own range, so in a padded batch a text's vector would depend on the texts beside it (seen here: a short
        title's vector changed when a long text shared its batch). Alone, a text always gets the same vector, as
        an index that is rebuilt or written in pieces needs; unpadded, a short title also runs faster."""
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            encoded = self.tokenizer.encode((prompt or "") + text)
            ids = np.array([encoded.ids], dtype=np.int64)
            mask = np.ones_like(ids)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0][0]
            pooled = hidden.mean(axis=0)
            norm = float(np.linalg.norm(pooled))
            out[i] = pooled / norm if norm > 0 else pooled
        return out
