"""hybrid.evaluation.report: the self-contained HTML page."""

from __future__ import annotations

import re

from helpers import label_predictions

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
