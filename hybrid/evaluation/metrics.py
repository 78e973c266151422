"""Every quality number the project reports is computed here, for ours and the baselines alike.

scipy.stats and sklearn.metrics are imported by the functions that use them: `hybrid serve`'s
front process imports this module (through the LLM check's records) but computes nothing
with them, and importing them took 1.2 s of its start, on the cores its workers load on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hybrid.ingest.keys import label_key


def top_k(probabilities: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]


def category_metrics(Y: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray,
                     names: Sequence[str]) -> dict[str, Any]:
    """`Y`, `predicted`: (n, k) 0/1; `probabilities`: (n, k) scores used for ranking."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    Y = np.asarray(Y, dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    best = top_k(probabilities, 3)
    rows = np.arange(len(Y))
    top1 = np.zeros_like(Y)
    top1[rows, best[:, 0]] = 1
    hits3 = np.take_along_axis(Y, best, axis=1)
    p, r, f, support = precision_recall_fscore_support(Y, predicted, zero_division=0)

    def macro(guess: np.ndarray) -> float:
        """Over categories that occur in the gold labels or the guesses, as sklearn does for
        single-label data; a category absent from both says nothing about the model."""
        labels = np.flatnonzero(Y.sum(axis=0) + guess.sum(axis=0) > 0)
        return float(f1_score(Y, guess, labels=labels, average="macro", zero_division=0))

    return {
        "n": len(Y),
        "accuracy_top1": float(Y[rows, best[:, 0]].mean()),
        "macro_f1_top1": macro(top1),
        "micro_f1": float(f1_score(Y, predicted, average="micro", zero_division=0)),
        "macro_f1": macro(predicted),
        "samples_f1": float(f1_score(Y, predicted, average="samples", zero_division=0)),
        "p_at_1": float(hits3[:, 0].mean()),
        "p_at_3": float(hits3.sum(axis=1).mean() / 3),
        "labels_per_article": float(predicted.sum(axis=1).mean()),
        "per_category": {
            name: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]),
                   "support": int(support[j])}
            for j, name in enumerate(names)
        },
    }


def tag_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                k: int = 5) -> dict[str, float]:
    """P@k, R@k and F1@k per article (case/width-insensitive), averaged over articles with gold
    tags. P@k divides by k, so returning fewer than k tags is not rewarded."""
    ps, rs, fs = [], [], []
    for g, p in zip(gold, predicted, strict=True):
        truth = {label_key(t) for t in g if label_key(t)}
        if not truth:
            continue
        guess = list(dict.fromkeys(label_key(t) for t in p))[:k]
        hits = len(truth.intersection(guess))
        precision, recall = hits / k, hits / len(truth)
        ps.append(precision)
        rs.append(recall)
        fs.append(2 * precision * recall / (precision + recall) if hits else 0.0)
    n = max(len(fs), 1)
    return {"n": len(fs), f"p_at_{k}": sum(ps) / n, f"r_at_{k}": sum(rs) / n,
            f"f1_at_{k}": sum(fs) / n}


def top1_right(Y: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Per article, whether its most probable category is one of its gold labels."""
    return Y[np.arange(len(Y)), probabilities.argmax(axis=1)].astype(bool)


def calibration(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10
                ) -> dict[str, Any]:
    """Expected calibration error of the top category's confidence: the article-weighted
    gap between confidence and accuracy in equal-width bins (0 is perfect)."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            ece += gap * inside.mean()
            table.append({"low": b / bins, "high": (b + 1) / bins, "articles": int(inside.sum()),
                          "confidence": float(confidence[inside].mean()),
                          "accuracy": float(correct[inside].mean())})
    return {"ece": float(ece), "bins": table}


def risk_coverage(confidence: Sequence[float], correct: Sequence[bool],
                  shares: Sequence[float] = tuple(np.round(np.arange(0.1, 1.01, 0.1), 1))
                  ) -> list[dict[str, float]]:
    """Accuracy of the most confident share of the articles, for each share: what labelling
    only those automatically would give."""
    order = np.argsort(-np.asarray(confidence, float), kind="stable")
    correct = np.asarray(correct, float)[order]
    return [{"coverage": float(s), "accuracy": float(correct[:max(1, round(s * len(order)))]
                                                      .mean())} for s in shares]


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (scipy's): honest for small `n` and for
    proportions near 0 or 1, where the normal approximation is not. (0, 1) when `n` is 0."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def mean_interval(values: np.ndarray, level: float = 0.95, resamples: int = 2000,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of the means of the columns of `values` (n, m), as
    (lows, highs): every column is resampled with the same draws of rows, so columns that
    are paired measures of the same articles stay paired."""
    values = np.asarray(values, float)
    if len(values) < 2 or np.all(values == values[0]):
        return values.mean(axis=0), values.mean(axis=0)
    from scipy.stats import bootstrap

    ci = bootstrap((values,), np.mean, axis=0, confidence_level=level, n_resamples=resamples,
                   method="percentile", random_state=seed).confidence_interval
    return ci.low, ci.high
