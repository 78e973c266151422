"""hybrid.evaluation.tables: terminal tables that line up with Chinese names."""

from __future__ import annotations

from wcwidth import wcswidth

from hybrid.evaluation.tables import format_comparison, format_report

REPORT = {"methods": {
    "hybrid": {"categories": {
        "accuracy_top1": 0.9, "macro_f1_top1": 0.8, "micro_f1": 0.85, "macro_f1": 0.8,
        "samples_f1": 0.86, "p_at_1": 0.9, "p_at_3": 0.33,
        "per_category": {"云计算与DevOps": {"precision": 1.0, "recall": 0.5, "f1": 0.667,
                                            "support": 4},
                         "AI": {"precision": 0.5, "recall": 1.0, "f1": 0.667, "support": 1}}},
               "tags": {"p_at_5": 0.3, "r_at_5": 0.4, "f1_at_5": 0.33}},
    "jieba_extract_tags": {"tags": {"p_at_5": 0.1, "r_at_5": 0.2, "f1_at_5": 0.13}}}}


def columns_line_up(text: str) -> bool:
    """Every row of each table has the same display width (a CJK character is two columns)."""
    tables = text.split("\n\n")
    return all(len({wcswidth(line) for line in table.splitlines()}) == 1 for table in tables)


def test_report_table_has_every_method_and_aligns_chinese_names():
    text = format_report(REPORT)
    assert "jieba_extract_tags" in text and "云计算与DevOps" in text and "0.900" in text
    assert columns_line_up(text)


def test_comparison_table_aligns_and_shows_missing_values():
    rows = [{"category": "客户端开发", "from": "前端开发, 移动开发", "old_f1": 0.7,
             "old_support": 31, "new_precision": 0.8, "new_recall": 0.75, "new_f1": 0.77,
             "new_support": 30},
            {"category": "", "from": "安全最佳实践", "old_f1": 0.5, "old_support": 16,
             "new_precision": None, "new_recall": None, "new_f1": None, "new_support": None}]
    text = format_comparison(rows)
    assert columns_line_up(text) and " - " in text.splitlines()[-1] + " "
