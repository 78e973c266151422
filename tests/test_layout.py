"""The package layout keeps its promises: no import cycles (counting imports at any level),
small modules, and a MongoDB layer that starts without the ML stack."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hybrid"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports anywhere: at module level, inside a function (a lazy
    import still closes a circle), under `if TYPE_CHECKING`, absolute or relative."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        found |= {n for n in names if n in known}
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: {target for target in imports(name, path, set(mods))
                   # a module's own packages are imported before it: not an edge
                   if target != name and not name.startswith(target + ".")}
            for name, path in mods.items()}


def test_no_import_cycles():
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_lazy_and_relative_imports_are_edges(tmp_path):
    """The graph sees the imports a module-level scan would miss."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from . import a\n")
    known = {"pkg", "pkg.a", "pkg.b"}
    assert imports("pkg.a", pkg / "a.py", known) == {"pkg.b"}
    assert imports("pkg.b", pkg / "b.py", known) == {"pkg", "pkg.a"}


def test_neither_nightly_engine_imports_the_other_or_the_run():
    graph = import_graph()
    engines = {"hybrid.batch.local_engine", "hybrid.batch.ray_engine"}
    for engine in engines:
        assert graph[engine] & (engines | {"hybrid.batch.nightly"}) == set(), engine
        assert "hybrid.batch.job" in graph[engine]


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


def layout_rows(readme: Path) -> dict[str, str]:
    """A README's layout table: folder (`ingest/`; `hybrid/` for the package's own
    modules) → the cell listing its modules."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in readme.read_text(encoding="utf-8").splitlines()
            if re.match(r"\| `[\w/]+/` \|", line)]
    return {row[0].strip("`"): row[-1] for row in rows}


def laid_out() -> dict[str, Path]:
    """Modules with code in them, by path under hybrid/ (`ingest/article.py`)."""
    return {path.relative_to(PACKAGE).as_posix(): path for path in modules().values()
            if not _only_a_docstring(path)}


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_every_module_is_in_the_readme_layout_table(readme: str):
    rows = layout_rows(PACKAGE.parent / readme)
    missing = []
    for module in laid_out():
        folder, _, name = module.partition("/") if "/" in module else ("hybrid", "", module)
        if f"`{name}`" not in rows.get(f"{folder}/", ""):
            missing.append(module)
    assert missing == []


def test_every_module_has_its_job_in_docs_layout():
    page = (PACKAGE.parent / "docs" / "layout.md").read_text(encoding="utf-8")
    missing = [module for module in laid_out()
               if not re.search(rf"^\| `{re.escape(module)}` \| \S", page, re.M)]
    assert missing == []


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return path.name == "__main__.py" or (
        len(body) <= 1 and all(isinstance(n, ast.Expr) for n in body))
