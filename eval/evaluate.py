"""One evaluation: a dataset, a configuration -> aggregate and per-query metrics, and the run itself."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval.beir import Dataset
from eval.metrics import recall_curve, score
from eval.runner import EvalConfig, Progress, Run, Workspaces, run_dataset


def evaluate_config(dataset: Dataset, config: EvalConfig, workspaces: Workspaces, home: Path | None = None,
                    progress: Progress | None = None) -> tuple[dict[str, Any], Run]:
    started = time.time()
    run, qrels, ranker = run_dataset(dataset, config, workspaces, home, progress)
    means, per_query = score(qrels, run)
    result = {
        "dataset": str(dataset.path),
        "split": dataset.split,
        "label": config.label(ranker),
        "config": {"requested": {k: v for k, v in asdict(config).items() if v is not None},
                   "ranker": ranker.model_dump()},
        "queries": len(qrels),
        "corpus_documents": len(dataset.corpus),
        "skipped_documents_without_text": len(dataset.skipped_docs),
        "metrics": means,
        "recall_curve": recall_curve(qrels, run),
        "per_query": per_query,
        "seconds": round(time.time() - started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return result, run
