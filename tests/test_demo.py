"""hybrid.demo: the whole job on the bundled sample, on an embedded server."""

from __future__ import annotations

from dataclasses import replace

from hybrid.demo import mongo_demo


def test_demo_runs_the_nightly_job_on_an_embedded_server(config, sample_model_dir):
    lines: list[str] = []
    mongo_demo(sample_model_dir, replace(config, mongo_uri=None), lines.append, lines.append)
    text = "\n".join(lines)
    assert "seen 110, tagged 6" in text and "skipped-manual 104" in text
    assert text.count("categories [") == 3
