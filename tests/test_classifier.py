"""hybrid.learn.classifier: the category model on synthetic features."""

from __future__ import annotations

import numpy as np
from helpers import synthetic_features

from hybrid.learn.classifier import CategoryClassifier


def test_classifier_handles_multi_label_data():
    rng = np.random.default_rng(0)
    X = synthetic_features(rng, 60)
    Y = np.zeros((60, 4), dtype=int)
    for i, x in enumerate(X):
        Y[i, 0] = x.embedding[0] > 0
        Y[i, 1] = x.embedding[1] > 0
        Y[i, 2] = not (Y[i, 0] or Y[i, 1])
    clf = CategoryClassifier(["a", "b", "c", "d"], max_categories=3).fit(X, Y)
    assert not clf.single_label_ and not clf.trained_[3]
    pred = clf.predict(X)
    assert pred.shape == (60, 4) and (pred.sum(axis=1) >= 1).all() and (pred.sum(axis=1) <= 3).all()
    assert (pred.sum(axis=1) == 2).any()
    assert pred[:, 3].sum() == 0


def test_multi_label_training_in_worker_processes():
    """Past 1 MB joblib hands the workers read-only memory maps; liblinear used to fail on
    them ("WRITEBACKIFCOPY base is read-only") when sorting the sparse indices in place."""
    rng = np.random.default_rng(2)
    alphabet = np.array([chr(0x4E00 + i) for i in range(150)])
    X = synthetic_features(rng, 300)
    for x in X:
        x.lexical = "".join(rng.choice(alphabet, 800))
    Y = np.zeros((300, 3), dtype=int)
    Y[:, 0] = 1
    Y[:, 1] = [x.embedding[0] > 0 for x in X]
    Y[:, 2] = 1 - Y[:, 1]
    clf = CategoryClassifier(["a", "b", "c"], n_jobs=2).fit(X, Y)
    assert not clf.single_label_
    assert clf.predict(X).shape == (300, 3)


def test_classifier_uses_softmax_for_single_label_data():
    rng = np.random.default_rng(1)
    X = synthetic_features(rng, 45)
    Y = np.eye(3, dtype=int)[[int(x.embedding[0] > 0) + int(x.embedding[1] > 0) for x in X]]
    clf = CategoryClassifier(["a", "b", "c"], min_categories=1, max_categories=1).fit(X, Y)
    assert clf.single_label_
    assert (clf.predict(X).sum(axis=1) == 1).all()
    proba = clf.predict_proba(X)
    assert ((proba >= 0) & (proba <= 1)).all()
