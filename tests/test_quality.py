"""hybrid.evaluation.quality: label-quality tables on synthetic out-of-fold predictions."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FLIPPED, label_predictions

from hybrid.evaluation.quality import assess, confusion_matrix, coverage


def test_cleanlab_ranks_the_flipped_labels_first():
    q = assess(label_predictions(), suspects=10)
    assert set(q.suspects["id"]) == {f"a{i}" for i in FLIPPED}
    first = q.suspects.iloc[0]
    assert first["author labels"] != first["model labels"]


def test_cleanlab_ranks_in_this_process_without_forking_a_pool(monkeypatch):
    """A pool forked from a process with other threads can hang for good (a report did)."""
    import multiprocessing

    def no_pool(*args, **kwargs):
        raise AssertionError("a multiprocessing pool was started")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setattr(multiprocessing.context.ForkContext, "Pool", no_pool, raising=False)
    monkeypatch.setattr(multiprocessing.context.BaseContext, "Pool", no_pool)
    q = assess(label_predictions(), suspects=10)
    assert set(q.suspects["id"]) == {f"a{i}" for i in FLIPPED}


def test_tables_agree_with_the_predictions():
    p = label_predictions()
    q = assess(p)
    assert q.summary["articles"] == 90 and q.summary["accuracy_top1"] == pytest.approx(86 / 90)
    assert list(q.per_category.columns) == ["precision", "recall", "f1", "support", "predicted"]
    assert q.per_category["support"].sum() == 90
    confusion = confusion_matrix(p)
    assert np.trace(confusion.to_numpy()) == 86 and confusion.to_numpy().sum() == 90
    assert q.confused_pairs["articles"].sum() == 4
    assert q.reliability["articles"].sum() == 90
    assert (q.confidence["correct"].sum(), len(q.confidence)) == (86, 90)
    first = q.tag_frequency.iloc[0]
    assert (first["tag"], first["author"]) == ("MySQL", 90)
    assert q.tag_tail.loc["share used once", "author"] == pytest.approx(90 / 91)


def test_coverage_falls_and_accuracy_rises_with_the_threshold():
    table = coverage(label_predictions())
    assert table["coverage"].iloc[0] == 1.0
    assert (np.diff(table["coverage"]) <= 0).all()
    assert table["articles"].iloc[-1] == 0 or table["accuracy_top1"].iloc[-1] >= 0.97
