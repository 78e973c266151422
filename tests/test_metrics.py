"""hybrid.evaluation.metrics, checked against scikit-learn and by hand on small cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from hybrid.evaluation.metrics import calibration, category_metrics, risk_coverage, tag_metrics


def test_category_metrics_agree_with_scikit_learn():
    Y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]])
    predicted = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]])
    proba = np.array([[.9, .1, .0], [.6, .3, .1], [.5, .4, .1], [.1, .1, .8], [.2, .7, .1]])
    m = category_metrics(Y, predicted, proba, ["a", "b", "c"])
    assert m["micro_f1"] == pytest.approx(f1_score(Y, predicted, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(Y, predicted, average="macro"))
    assert m["samples_f1"] == pytest.approx(f1_score(Y, predicted, average="samples"))
    assert m["accuracy_top1"] == pytest.approx(3 / 5)  # rows 0, 2, 3 have their top right
    top1 = np.eye(3, dtype=int)[proba.argmax(axis=1)]
    assert m["macro_f1_top1"] == pytest.approx(f1_score(Y, top1, average="macro"))
    assert m["p_at_1"] == m["accuracy_top1"]
    assert m["p_at_3"] == pytest.approx(Y.sum() / (3 * len(Y)))  # 3 columns: all ranked
    assert m["labels_per_article"] == pytest.approx(6 / 5)
    per = m["per_category"]["b"]
    assert per["precision"] == pytest.approx(precision_score(Y[:, 1], predicted[:, 1]))
    assert per["recall"] == pytest.approx(recall_score(Y[:, 1], predicted[:, 1]))
    assert per["support"] == 2


def test_macro_f1_skips_a_category_absent_from_gold_and_guesses():
    Y = np.array([[1, 0, 0], [0, 1, 0]])
    m = category_metrics(Y, Y, Y.astype(float), ["a", "b", "never"])
    assert m["macro_f1"] == 1.0 and m["macro_f1_top1"] == 1.0


def test_tag_metrics_by_hand():
    gold = [["Redis", "缓存"], ["vue"], []]
    predicted = [["redis", "ＲＥＤＩＳ", "mysql", "缓存", "a", "b"], ["react"], ["x"]]
    m = tag_metrics(gold, predicted)
    # article 1: 2 hits in the first 5 distinct keys; P = 2/5, R = 1, F1 = 4/7; article 2: 0
    assert m["n"] == 2  # the article without gold tags does not count
    assert m["p_at_5"] == pytest.approx((2 / 5 + 0) / 2)
    assert m["r_at_5"] == pytest.approx((1 + 0) / 2)
    assert m["f1_at_5"] == pytest.approx((4 / 7 + 0) / 2)


def test_calibration_error_and_risk_coverage_by_hand():
    confidence = [0.95, 0.95, 0.55, 0.55, 0.15]
    correct = [True, True, True, False, False]
    result = calibration(confidence, correct)
    # bins: 0.9-1.0 (2 right at 0.95: gap 0.05), 0.5-0.6 (half right at 0.55: 0.05),
    # 0.1-0.2 (none right at 0.15: 0.15); weighted 0.4*0.05 + 0.4*0.05 + 0.2*0.15
    assert result["ece"] == pytest.approx(0.07)
    assert [b["articles"] for b in result["bins"]] == [1, 2, 2]
    curve = risk_coverage(confidence, correct, shares=(0.4, 0.8, 1.0))
    assert [c["accuracy"] for c in curve] == pytest.approx([1.0, 0.75, 0.6])
