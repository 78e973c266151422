"""Plain-text tables for the terminal. tabulate measures Chinese characters as two columns
(wcwidth), so names line up whatever their script."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

_METHOD_COLUMNS = {"acc@1": ("categories", "accuracy_top1"),
                   "macroF1@1": ("categories", "macro_f1_top1"),
                   "microF1": ("categories", "micro_f1"), "macroF1": ("categories", "macro_f1"),
                   "samplesF1": ("categories", "samples_f1"), "P@1": ("categories", "p_at_1"),
                   "P@3": ("categories", "p_at_3"), "tagP@5": ("tags", "p_at_5"),
                   "tagR@5": ("tags", "r_at_5"), "tagF1@5": ("tags", "f1_at_5"),
                   "ECE": ("confidence", "ece")}
_DEFECT_COLUMNS = {"fragments": "fragments", "near-duplicate pairs": "near_duplicate_pairs",
                   "unsupported": "unsupported", "articles with a broken tag":
                   "share_with_broken_tags", "tags": "tags"}


def table(rows: list[list[Any]], headers: list[str]) -> str:
    return tabulate(rows, headers, floatfmt=".3f", missingval="-")


def format_report(report: dict[str, Any], per_category: bool = True) -> str:
    """One row per method, then ours per category."""
    methods = report["methods"]
    columns = {title: (part, key) for title, (part, key) in _METHOD_COLUMNS.items()
               if any(m.get(part, {}).get(key) is not None for m in methods.values())}
    rows = [[name, *(m.get(part, {}).get(key) for part, key in columns.values())]
            for name, m in methods.items()]
    text = table(rows, ["method", *columns])  # a measure no method has is left out
    with_tags = {name: m["defects"] for name, m in methods.items() if "defects" in m}
    if with_tags:
        text += "\n\n" + table([[name, *(d[k] for k in _DEFECT_COLUMNS.values())]
                                for name, d in with_tags.items()],
                               ["tag defects", *_DEFECT_COLUMNS])
    confidence = methods.get("hybrid", {}).get("confidence")
    if confidence:
        curve = confidence["risk_coverage"]
        text += "\n\n" + table([["top-1 accuracy", *(c["accuracy"] for c in curve)]],
                               ["most confident", *(f"{c['coverage']:.0%}" for c in curve)])
        text += "\n\n" + table(
            [[f"{r['share']:.0%} ({r['articles']})", r["accuracy"], r["lowest_confidence"],
              r["random"]] for r in confidence["routing"]],
            ["perfect teacher answers", "top-1 alone", "the least confident", "at random"])
    if per_category and "hybrid" in methods:
        cats = methods["hybrid"]["categories"]["per_category"]
        text += "\n\n" + table([[name, m["precision"], m["recall"], m["f1"], m["support"]]
                                for name, m in cats.items()],
                               ["category (hybrid)", "P", "R", "F1", "support"])
    return text


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """Old against new, one line per category (out-of-fold scores of each training)."""
    return table([[r["category"], r["from"], r["old_f1"], r["old_support"], r["new_precision"],
                   r["new_recall"], r["new_f1"], r["new_support"]] for r in rows],
                 ["category", "from", "old F1", "n", "new P", "new R", "new F1", "n"])
