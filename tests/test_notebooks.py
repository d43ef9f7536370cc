"""Both analyst notebooks run top to bottom (on a tiny hand-made set and the tiny model), and are stored clean."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

DOCS = [
    ("n-1", "一种锂离子电池正极材料的制备方法", "以磷酸铁锂为正极材料，包覆碳层提高导电性。"),
    ("n-2", "一种锂电池隔膜", "聚乙烯隔膜涂覆陶瓷层，提高电池安全性。"),
    ("n-3", "Thread group scheduler for a parallel processor", "A scheduler assigns thread groups to multiprocessors."),
    ("n-4", "Memory controller with refresh scheduling", "A DRAM controller schedules refresh commands."),
    ("n-5", "一种抗起球针织围巾", "通过低捻纱线与后整理工艺减少针织围巾起球。"),
]
QUERIES = [("q1", "锂电池 正极材料", "n-1"), ("q2", "GPU thread scheduling", "n-3"), ("q3", "围巾 起球", "n-5"),
           ("q4", "cathode material for lithium batteries", "n-1")]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nbset")
    (root / "qrels").mkdir()
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}, ensure_ascii=False) + "\n"
                                               for i, t, x in DOCS), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n"
                                                for q, t, _ in QUERIES), encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text("".join(f"{q}\t{d}\t1\n" for q, _, d in QUERIES), encoding="utf-8")
    return root


def test_notebooks_are_stored_without_outputs() -> None:
    assert {p.name for p in NOTEBOOKS} == {"evaluation.ipynb", "error_analysis.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, tiny_set: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMATCH_NB_ROOT", str(ROOT))
    monkeypatch.setenv("PMATCH_NB_DATA", str(tiny_set))
    monkeypatch.setenv("PMATCH_NB_MODEL", "static-64")
    monkeypatch.setenv("PMATCH_NB_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("PMATCH_VECTOR_CACHE", str(tmp_path / "vectors.sqlite"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if path.name == "evaluation.ipynb":
        assert (tmp_path / "figures" / f"recall_{tiny_set.name}.png").stat().st_size > 1000
        assert (tmp_path / "figures" / f"wins_{tiny_set.name}.png").stat().st_size > 1000
        assert "wins" in text and "losses" in text
    else:
        assert "=== q" in text and "should have retrieved" in text
