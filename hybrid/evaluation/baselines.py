"""The usual ways, run beside ours so every number is a comparison.

The LR baselines get the same care as ours (balanced class weights, softmax for single-label
data, C=10): a comparison against a weak baseline would prove nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import jieba
import jieba.analyse
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline, make_pipeline, make_union

from hybrid.learn.classifier import EmbeddingColumns
from hybrid.learn.label_sets import choose
from hybrid.learn.linear import linear_model

jieba.setLogLevel(60)


def tfidf_lr(single_label: bool) -> Pipeline:
    """TF-IDF over jieba words and character 2-3-grams + LR (input: text)."""
    return make_pipeline(
        make_union(TfidfVectorizer(tokenizer=jieba.lcut, token_pattern=None, sublinear_tf=True,
                                   min_df=2),
                   TfidfVectorizer(analyzer="char", ngram_range=(2, 3), sublinear_tf=True,
                                   min_df=2, max_features=200_000)),
        linear_model(single_label, C=10.0))


def embedding_lr(single_label: bool) -> Pipeline:
    """Sentence embedding only + LR (input: `Features`)."""
    return make_pipeline(EmbeddingColumns(), linear_model(single_label, C=10.0,
                                                          sparse_input=False))


def fit_predict_proba(make: type | object, X_train: Sequence, Y_train: np.ndarray,
                      X_test: Sequence) -> np.ndarray:
    """Scores for every column; a column without both positives and negatives gets 0."""
    Y_train = np.asarray(Y_train)
    positives = Y_train.sum(axis=0)
    cols = np.flatnonzero((positives > 0) & (positives < len(Y_train)))
    single = bool((Y_train.sum(axis=1) == 1).all())
    target = Y_train[:, cols].argmax(axis=1) if single else Y_train[:, cols]
    pipeline = make(single)
    pipeline.fit(list(X_train), target)
    out = np.zeros((len(X_test), Y_train.shape[1]))
    out[:, cols] = pipeline.predict_proba(list(X_test)).reshape(len(X_test), -1)
    return out


def label_sets(probabilities: np.ndarray, max_k: int = 3) -> np.ndarray:
    """The plain rule for a baseline: every label at p >= 0.5, at least the top one."""
    out = np.zeros(probabilities.shape, dtype=int)
    thresholds = np.full(probabilities.shape[1], 0.5)
    for i, cols in enumerate(choose(probabilities, thresholds, 1, max_k)):
        out[i, cols] = 1
    return out


def jieba_tags(text: str, k: int = 5) -> list[str]:
    return jieba.analyse.extract_tags(text, topK=k)
