"""Embedding throughput per model: documents (title + abstract) per second and short queries per second.

    python bench/embedding_throughput.py [--n 200] [--models e5-small,use-m3,static-64] [--batch-size 32]

Documents are title + abstract from ``data/sample/patents.jsonl.gz`` (gzip JSONL: id, title, abstract, claims,
language; records without an abstract are skipped), alternating languages; without that file, a few built-in
patent-style abstracts, repeated. Prints one JSON object on stdout (progress goes to stderr). The machine is
shared: ``load_avg`` is recorded so runs can be compared honestly. The default run takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model  # noqa: E402  (bench/machine.py, beside this script)

from indexes.embedders import BUILTIN_NAMES, Embedder, load_embedder  # noqa: E402
from indexes.threads import embed_threads  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "patents.jsonl.gz"

# Fallback documents, written for this benchmark at typical patent lengths (title + abstract).
BUILTIN_DOCS = [
    "一种锂离子电池正极材料的制备方法\n本发明公开了一种锂离子电池正极材料的制备方法，包括以下步骤：将锂源、镍源、钴源和锰源"
    "按摩尔比混合后球磨，得到前驱体粉末；将前驱体粉末在氧气气氛中于750至900摄氏度煅烧10至20小时；冷却后经过筛分和表面包覆"
    "处理，得到正极材料。本发明制备的正极材料颗粒均匀，振实密度高，循环稳定性好，在高电压下容量保持率明显提高，工艺简单，"
    "成本低，适合工业化生产。",
    "一种针织围巾防起球整理方法\n本发明涉及纺织品后整理技术领域，具体公开了一种针织围巾防起球整理方法。该方法包括：对针织"
    "坯布进行预洗和烘干；在整理液中加入聚氨酯类抗起球剂和柔软剂，采用浸轧工艺使整理液均匀附着于纤维表面；随后经过预烘、"
    "焙烘和定形处理。经本方法处理后的围巾抗起球等级达到四级以上，手感柔软，且不影响织物的透气性和色牢度。",
    "一种用于农田灌溉的太阳能水泵控制系统\n本实用新型提供一种用于农田灌溉的太阳能水泵控制系统，包括光伏组件、最大功率点"
    "跟踪控制器、变频驱动器、水泵电机以及土壤湿度传感器。控制器根据光照强度调整水泵转速，并根据土壤湿度自动启停，实现按需"
    "灌溉。该系统无需接入电网，节水节能，结构简单，维护方便，适用于偏远地区的农业生产。",
    "Method for preparing a cathode material for lithium-ion batteries\nA method for preparing a cathode material "
    "for lithium-ion batteries comprises mixing a lithium source with nickel, cobalt and manganese precursors in a "
    "predetermined molar ratio, ball milling the mixture, calcining the resulting powder in an oxygen atmosphere at "
    "750 to 900 degrees Celsius, and coating the cooled particles with a metal oxide layer. The cathode material has "
    "a uniform particle size, a high tap density and improved capacity retention at high voltage, and the process "
    "is suitable for industrial production.",
    "Deep learning system for detecting tumours in medical images\nA system for detecting tumours in medical images "
    "includes an acquisition module that receives computed tomography scans, a preprocessing module that normalizes "
    "intensity and resamples the volumes, and a convolutional neural network trained on annotated scans to output "
    "a probability map of tumour regions. A post-processing module thresholds the map, removes small connected "
    "components and reports the location and volume of each candidate lesion to a clinician for review.",
    "Membrane bioreactor for wastewater treatment\nA membrane bioreactor for treating wastewater comprises an anoxic "
    "tank, an aerobic tank containing submerged hollow-fibre membrane modules, and a controller that adjusts "
    "aeration intensity according to the measured transmembrane pressure. Periodic backwashing with permeate "
    "reduces fouling, so that the reactor maintains a stable flux with lower energy consumption than conventional "
    "activated sludge systems.",
]
QUERIES = [
    "提高锂电池正极材料的循环寿命",
    "针织物防起球处理",
    "医学影像中的肿瘤自动识别",
    "农田智能灌溉节水设备",
    "污水处理膜污染控制",
    "低成本的钠离子电池",
    "improve cycle life of lithium battery cathodes",
    "anti-pilling finishing for knitted fabrics",
    "automatic tumour detection in CT scans",
    "water-saving irrigation pump for farms",
    "reduce membrane fouling in wastewater treatment",
    "cheap sodium-ion battery",
]


def load_documents(n: int) -> tuple[list[str], str]:
    if not SAMPLE.exists():
        return list(itertools.islice(itertools.cycle(BUILTIN_DOCS), n)), "builtin (repeated)"
    by_language: dict[str, list[str]] = {}
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if not record.get("abstract"):
                continue  # title-only records are not what the document throughput is about
            text = "\n".join(part for part in (record.get("title"), record["abstract"]) if part)
            by_language.setdefault(record.get("language") or "?", []).append(text)
    # alternate languages so both halves of a bilingual corpus are measured
    rows = itertools.zip_longest(*[[(lang, doc) for doc in docs] for lang, docs in by_language.items()])
    picked = [item for row in rows for item in row if item is not None][:n]
    counts = {lang: sum(1 for got, _ in picked if got == lang) for lang in by_language}
    return [doc for _, doc in picked], f"{SAMPLE.relative_to(ROOT)} (languages {counts})"


def machine_info() -> dict[str, object]:
    import sentence_transformers
    import torch

    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads_used": embed_threads(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
    }


def bench_model(name: str, docs: list[str], queries: list[str], batch_size: int) -> dict[str, object]:
    started = time.perf_counter()
    embedder: Embedder = load_embedder(name)
    load_s = time.perf_counter() - started
    embedder.encode_documents(docs[:4], batch_size=batch_size)  # warm-up: lazy init, allocator, caches

    started = time.perf_counter()
    embedder.encode_documents(docs, batch_size=batch_size)
    docs_s = time.perf_counter() - started

    started = time.perf_counter()
    embedder.encode_queries(queries, batch_size=batch_size)
    queries_s = time.perf_counter() - started
    return {
        "dim": embedder.dim,
        "max_seq_length": embedder.max_seq_length,
        "fingerprint": embedder.fingerprint,
        "load_seconds": round(load_s, 2),
        "docs": len(docs),
        "docs_per_second": round(len(docs) / docs_s, 1),
        "queries": len(queries),
        "sentences_per_second": round(len(queries) / queries_s, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="documents (and short queries) per model")
    parser.add_argument("--models", default=",".join(BUILTIN_NAMES), help="comma-separated embedder names or dirs")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    docs, source = load_documents(args.n)
    queries = list(itertools.islice(itertools.cycle(QUERIES), args.n))
    report: dict[str, object] = {
        "machine": machine_info(),
        "documents": {"source": source, "count": len(docs), "mean_chars": round(sum(map(len, docs)) / len(docs))},
        "batch_size": args.batch_size,
        "models": {},
    }
    for name in filter(None, (part.strip() for part in args.models.split(","))):
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        report["models"][name] = bench_model(name, docs, queries, args.batch_size)  # type: ignore[index]
    report["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
