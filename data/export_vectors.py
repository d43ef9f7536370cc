"""Export the precomputed vectors shipped in data/vectors/ for the bundled sample.

For each bundled record, the text the index embeds (``matcher.texts.dense_text``; with ``--titles``, its title,
``matcher.texts.title_text``, for the title channel's model) is embedded by the model,
through the vector cache (so a cache already filled by `make demo` makes this instant), and written as
``data/vectors/<model>.<kind>.npz``: text hashes, float16 vectors, and a header with the model's fingerprint.
`pmatch demo` loads them into the cache only when the installed model has that exact fingerprint; otherwise
the documents are embedded on the spot. Regenerate after changing the sample, the model or the text recipe:

    python data/export_vectors.py --model use-m3
    python data/export_vectors.py --model e5-small-int8 --titles
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache, text_hash
from matcher.config import load_config
from matcher.records import Demand, Patent
from matcher.texts import dense_text, title_text
from matcher.workspace import Workspace

HERE = Path(__file__).resolve().parent
MODELS = {"patents": Patent, "demands": Demand}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=load_config().dense_model)
    parser.add_argument("--out", type=Path, default=HERE / "vectors")
    parser.add_argument("--titles", action="store_true", help="embed the titles (the title channel's texts)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chars = load_config().dense_text_chars
    embedder = load_embedder(args.model)
    with VectorCache(Workspace().vector_cache_path) as cache:
        for kind, model in MODELS.items():
            with gzip.open(HERE / "sample" / f"{kind}.jsonl.gz", "rt", encoding="utf-8") as f:
                records = [model.model_validate(json.loads(line)) for line in f]
            texts = [title_text(r) if args.titles else dense_text(r, chars) for r in records]
            cache.embed(embedder.fingerprint, texts, embedder.encode_documents)
            path = args.out / f"{args.model}.{kind}.npz"
            n = cache.export_npz(embedder.fingerprint, [text_hash(t) for t in texts], path,
                                 {"model": args.model, "dim": embedder.dim, "kind": kind,
                                  **({"texts": "titles"} if args.titles else {"text_chars": chars})})
            print(f"{path}: {n} vectors, {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
