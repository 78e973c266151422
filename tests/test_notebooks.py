"""CI runs both notebooks top to bottom on the bundled sample, parameters injected after the
cell tagged `parameters` (as papermill does), and checks they are committed without outputs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from hybrid import data

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, parameters: dict[str, Any], cwd: Path) -> list[dict[str, Any]]:
    """Run a notebook; returns every output of every cell."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    index = next(i for i, cell in enumerate(nb.cells)
                 if "parameters" in cell.metadata.get("tags", []))
    nb.cells.insert(index + 1, new_code_cell("\n".join(f"{k} = {v!r}"
                                                       for k, v in parameters.items())))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return [o for cell in nb.cells for o in cell.get("outputs", [])]


@pytest.mark.parametrize("name", ["label_quality.ipynb", "taxonomy_change.ipynb"])
def test_notebooks_are_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_label_quality_notebook(sample_model_dir, cache_dir, tmp_path):
    outputs = execute("label_quality.ipynb", {
        "model": str(sample_model_dir), "data": str(data.path("sample_articles.jsonl")),
        "folds": 2, "cache_dir": str(cache_dir)}, tmp_path)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 6
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("precision" in t for t in tables)
    assert any("author labels" in t for t in tables)  # the cleanlab suspects


def test_taxonomy_change_notebook(sample_model_dir, cache_dir, tmp_path):
    outputs = execute("taxonomy_change.ipynb", {
        "model": str(sample_model_dir),
        "new_taxonomy": str(data.path("sample_taxonomy_v2.json")),
        "data": str(data.path("sample_articles.jsonl")),
        "examples": str(data.path("sample_unseen.jsonl")),
        "out": str(tmp_path / "v2"), "cache_dir": str(cache_dir)}, tmp_path)
    text = "".join(o.get("text", "") for o in outputs)
    assert "renamed  人工智能 (16 articles) → AI与机器学习" in text
    hits, misses = map(int, re.search(r"(\d+) hits, (\d+) misses", text).groups())
    assert misses <= 0.02 * (hits + misses)  # retraining reuses the embedding cache
    assert (tmp_path / "v2" / "manifest.json").exists()
