"""hybrid.evaluation.report: the self-contained HTML page."""

from __future__ import annotations

import re

from helpers import label_predictions

from hybrid import data
from hybrid.evaluation.quality import assess


def test_html_report_has_every_table_and_embedded_plot(tmp_path):
    from hybrid.evaluation.report import HEADINGS, write_report

    html = write_report(assess(label_predictions()), tmp_path / "r.html", "测试",
                        low_confidence=0.5).read_text(encoding="utf-8")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == len(HEADINGS) and all(len(i) > 2000 for i in images)
    assert html.count("<table") == 8
    for text in ("precision", "数据库", "Likely mislabelled", "a3", "share used once", "ECE",
                 "the least confident sent", "routing ceiling", "@font-face"):
        assert text in html
    assert "http" not in html  # self-contained


def test_the_report_never_overwrites_its_articles_or_lands_in_the_model(run, sample_model_dir,
                                                                        tmp_path):
    articles = tmp_path / "a.jsonl"
    articles.write_bytes(data.path("sample_articles.jsonl").read_bytes())
    for out, message in ((articles, "is the input"), (sample_model_dir / "r.html",
                                                      "inside the input folder")):
        result = run("report", "--model", str(sample_model_dir), "--data", str(articles),
                     "--out", str(out))
        assert result.exit_code == 2 and message in result.output, result.output
    assert articles.read_bytes() == data.path("sample_articles.jsonl").read_bytes()
    assert not (sample_model_dir / "r.html").exists()
