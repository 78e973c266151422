"""hybrid.evaluation.quality: label-quality tables on synthetic out-of-fold predictions."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.evaluation.quality import Predictions, assess, confusion_matrix, coverage

NAMES = ["数据库", "前端开发", "人工智能"]


FLIPPED = (3, 40, 50, 77)


def _predictions(n: int = 90, flipped: tuple[int, ...] = FLIPPED, seed: int = 0) -> Predictions:
    """A confident model that is right about every article; the authors got `flipped` wrong."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 3
    proba = np.full((n, 3), 0.03) + rng.uniform(0, 0.05, (n, 3))
    proba[np.arange(n), truth] = rng.uniform(0.75, 0.99, n)
    labels = np.eye(3, dtype=int)[truth]
    for i in flipped:
        labels[i] = np.roll(labels[i], 1)
    sets = np.eye(3, dtype=int)[proba.argmax(axis=1)]
    ids = [f"a{i}" for i in range(n)]
    tags = [["mysql", "索引"] if t == 0 else ["vue"] for t in truth]
    author_tags = [["MySQL", f"rare{i}"] for i in range(n)]
    return Predictions("test", NAMES, ids, [f"title {i}" for i in range(n)], labels, proba,
                       sets, tags, author_tags)


def test_cleanlab_ranks_the_flipped_labels_first():
    q = assess(_predictions(), suspects=10)
    assert set(q.suspects["id"]) == {f"a{i}" for i in FLIPPED}
    first = q.suspects.iloc[0]
    assert first["author labels"] != first["model labels"]


def test_tables_agree_with_the_predictions():
    p = _predictions()
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
    table = coverage(_predictions())
    assert table["coverage"].iloc[0] == 1.0
    assert (np.diff(table["coverage"]) <= 0).all()
    assert table["articles"].iloc[-1] == 0 or table["accuracy_top1"].iloc[-1] >= 0.97
