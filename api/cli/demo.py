"""``pmatch demo``: load the bundled real sample, build the indexes and run example searches (the quick start)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import SAMPLE_DIR, VECTORS_DIR, check_lang, console
from api.cli.index import index_build
from api.cli.ingest import ingest
from api.cli.options import HomeOpt, LangOpt, h
from api.cli.search import search
from matcher.config import load_config
from matcher.i18n import text
from matcher.store import COLLECTIONS
from matcher.workspace import Workspace

# what to type next (commands, the same in either language)
NEXT_COMMANDS = ('.venv/bin/pmatch search "石墨烯 散热膜" --explain',
                 ".venv/bin/pmatch match demand ZB-D-0001 --explain", ".venv/bin/pmatch stats")


def demo(
    home: HomeOpt = None,
    sample: Annotated[Path, typer.Option(help=h("demo.demo.sample"))] = SAMPLE_DIR,
    lang: LangOpt = "zh",
) -> None:
    """Load the bundled real sample data, build the indexes and run example searches (the quick start)."""
    check_lang(lang)
    import gzip
    import shutil
    import tempfile

    ws = Workspace(home)
    with ws.open_store() as store:
        empty = store.count("patents") == 0
    if empty:
        for k in COLLECTIONS:
            source = sample / f"{k}.jsonl.gz"
            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / f"{k}.jsonl"
                with gzip.open(source, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                console.print(text("cli.demo.loading", lang, kind=k, file=source.name))
                ingest(k, plain, lang=lang, home=ws.home)
    else:
        console.print(text("cli.demo.has_data", lang, path=ws.store_path))
    config = load_config(ws.home)
    for model in (config.dense_model, config.title_model):
        if model:
            _seed_vectors(ws, model, lang)
    with ws.open_store() as store:
        version = store.data_version
    for k in COLLECTIONS:
        manifest = ws.current_manifest(k)
        if manifest is None or manifest.data_version != version or manifest.dense_model != config.dense_model \
                or manifest.title_model != config.title_model:
            index_build(k, lang=lang, home=ws.home)
    examples = [("锂离子电池 正极材料", None), ("graphics processor thread scheduling", None),
                ("A method for preparing cathode material for lithium batteries", "hybrid")]
    for query, mode in examples:
        search(query, k=5, mode=mode, lang=lang, home=ws.home)
    console.print(text("cli.demo.try", lang) + "  ·  ".join(f"[bold]{c}[/]" for c in NEXT_COMMANDS), highlight=False)


def _seed_vectors(ws: Workspace, model: str, lang: str) -> None:
    """Load the shipped precomputed vectors of ``model`` into the vector cache (if made by this exact model)."""
    from indexes.embedders import load_embedder
    from indexes.vector_cache import VectorCache, npz_header

    files = sorted(VECTORS_DIR.glob(f"{model}.*.npz"))
    if not files:
        return
    fingerprint = load_embedder(model).fingerprint
    with VectorCache(ws.vector_cache_path) as cache:
        for path in files:
            if npz_header(path).get("fingerprint") != fingerprint:
                console.print(f"[yellow]{text('cli.demo.other_build', lang, file=path.name, model=model)}[/]")
                continue
            n = cache.import_npz(path, fingerprint)
            console.print(text("cli.demo.vectors", lang, count=n, model=model, file=path.name))
