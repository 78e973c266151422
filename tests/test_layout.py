"""The package layout keeps its promises: no import cycles, small modules, and a MongoDB
layer that starts without the ML stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hybrid"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_at_load(path: Path, known: set[str]) -> set[str]:
    """Project modules imported at module level (function-level imports run later)."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in known}
    return found


def test_no_import_cycles():
    mods = modules()
    graph = {name: {target for target in imports_at_load(path, set(mods))
                    # a module's own packages are imported before it: not an edge
                    if target != name and not name.startswith(target + ".")}
             for name, path in mods.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_no_module_is_longer_than_a_sitting():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_mongodb_layer_imports_no_ml_code():
    code = ("import sys\n"
            "import hybrid.mongo.lease, hybrid.mongo.runs, hybrid.mongo.store, "
            "hybrid.mongo.transfer, hybrid.mongo.uri, hybrid.mongo.retry\n"
            "heavy = [m for m in ('sklearn', 'faiss', 'keybert', 'scipy', 'numpy', 'torch', "
            "'hybrid.learn', 'hybrid.embed') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_module_is_in_the_readme_layout_table():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    missing = [name for name, path in modules().items() if not _only_a_docstring(path)
               and f"`{path.relative_to(PACKAGE).as_posix()}`" not in readme]
    assert missing == []


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return path.name == "__main__.py" or (
        len(body) <= 1 and all(isinstance(n, ast.Expr) for n in body))
