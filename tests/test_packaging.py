"""pyproject.toml builds quietly: `make demo` on a fresh machine shows no setuptools warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_project_metadata_loads_without_setuptools_warnings(monkeypatch):
    pytest.importorskip("setuptools", minversion="77")  # what build-system requires
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"  # an SPDX expression, not a table


def test_the_scikit_learn_floor_has_what_the_tag_ranker_calls():
    """`sklearn.frozen.FrozenEstimator` came in 1.6 and `HistGradientBoostingClassifier.fit`'s
    `X_val`/`y_val` in 1.7: a floor below that installs a version the tag ranker breaks on."""
    requirements = pytest.importorskip("packaging.requirements")
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    sklearn = next(r for d in deps if (r := requirements.Requirement(d)).name == "scikit-learn")
    assert "1.6.1" not in sklearn.specifier
    assert "1.7.0" in sklearn.specifier
