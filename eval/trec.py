"""TREC run files: ``qid Q0 docid rank score tag``, so trec_eval, ranx or pytrec_eval can score a run."""

from __future__ import annotations

from pathlib import Path


def write_run(run: dict[str, dict[str, float]], path: str | Path, tag: str) -> None:
    tag = tag.replace(" ", "_") or "pmatch"
    with Path(path).open("w", encoding="utf-8") as out:
        for qid in sorted(run):
            ranked = sorted(run[qid].items(), key=lambda item: (-item[1], item[0]))
            for rank, (doc_id, score) in enumerate(ranked, 1):
                out.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line_no, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) != 6:
            raise ValueError(f"{path}:{line_no}: expected 6 columns (qid Q0 docid rank score tag)")
        run.setdefault(cols[0], {})[cols[2]] = float(cols[4])
    return run
