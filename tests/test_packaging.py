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
