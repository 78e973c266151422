"""Are the labels any good? Tables for the label-quality notebook and `hybrid report`.

Everything is computed from predictions the model made for articles it did not learn from:
out-of-fold when the articles are its training data (a model scoring what it memorised
says nothing), else the model's own predictions. The numbers themselves come from
`hybrid.metrics`; this module slices them (per category, per confidence, per tag) and asks
cleanlab which author labels look wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from hybrid.config import Config
from hybrid.evaluation import routing
from hybrid.evaluation.crossval import label_matrix, out_of_fold_outputs, predict_split
from hybrid.evaluation.metrics import (
    calibration,
    category_metrics,
    risk_coverage,
    tag_metrics,
    top1_right,
)
from hybrid.ingest.article import Article
from hybrid.ingest.clean import clean
from hybrid.ingest.keys import label_key
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import Taxonomy
from hybrid.taxonomy.change import Migration

Progress = Callable[[str], None]
COVERAGE_STEPS = np.round(np.arange(0.0, 1.0, 0.05), 2)
RELIABILITY_BINS = 10
MOST_CONFUSED = 8


@dataclass
class Predictions:
    """Per article, in input order: author labels beside the model's, for articles the model
    did not train on. Only articles with at least one authorized author label are kept."""

    how: str
    names: list[str]
    ids: list[str]
    titles: list[str]
    labels: np.ndarray  # (n, k) author labels, 0/1
    proba: np.ndarray  # (n, k) calibrated probabilities
    sets: np.ndarray  # (n, k) the categories the model would assign, 0/1
    confidence: np.ndarray  # (n,) the stored confidence: how likely the top category is right
    tags: list[list[str]]
    author_tags: list[list[str]]
    routing: list[dict[str, Any]]  # `hybrid.evaluation.routing.ceiling`; empty if not measured


def _predictions(how: str, articles: Sequence[Article], taxonomy: Taxonomy,
                 outputs: dict[str, Any], config: Config) -> Predictions:
    return Predictions(how, taxonomy.names, [a.id for a in articles],
                       [a.title for a in articles], label_matrix(articles, taxonomy),
                       outputs["proba"], outputs["sets"], outputs["confidence"],
                       outputs["tags"], [a.tags for a in articles],
                       routing.ceiling(articles, outputs["predictions"], taxonomy, config))


def _labelled(articles: Sequence[Article], taxonomy: Taxonomy) -> list[Article]:
    return [a for a, y in zip(articles, label_matrix(articles, taxonomy), strict=True) if y.any()]


def outputs_for(model: HybridModel, articles: Sequence[Article], config: Config,
                n_folds: int = 5, seed: int = 0, progress: Progress = lambda _: None
                ) -> tuple[str, list[Article], dict[str, Any]]:
    """(how, the labelled articles, our model's outputs for them): out of fold, from models
    trained as `model` was, if it learned categories from any of these articles; else its
    own (a zero-shot model learned none). Author labels go through the model's taxonomy
    change first, so old names never show."""
    migration = Migration.from_manifest(model.manifest)
    if migration is not None:
        articles = [replace(a, categories=migration.apply(a.categories)) for a in articles]
    if model.zero_shot or not set(model.train_ids).intersection(a.id for a in articles):
        articles = _labelled(articles, model.taxonomy)
        outputs = predict_split(model, [], articles, None, [clean(a) for a in articles],
                                model.taxonomy)["hybrid"]
        return "held out (the model's predictions)", articles, outputs
    settings = {k: model.settings[k] for k in ("embedder", "embed_budget", "tag_prefix_chars")}
    config = config.with_overrides(**settings, min_categories=model.classifier.min_categories,
                                   max_categories=model.classifier.max_categories)
    articles, outputs = out_of_fold_outputs(articles, model.taxonomy, config, n_folds, seed,
                                            model.featurizer.embedder, progress,
                                            with_baselines=False)
    return f"out of fold ({n_folds} folds)", articles, outputs["hybrid"]


def predictions_for(model: HybridModel, articles: Sequence[Article], config: Config,
                    n_folds: int = 5, seed: int = 0,
                    progress: Progress = lambda _: None) -> Predictions:
    """Out of fold if the model trained on any of these articles, else held out
    (`outputs_for`)."""
    how, articles, outputs = outputs_for(model, articles, config, n_folds, seed, progress)
    return _predictions(how, articles, model.taxonomy, outputs, config)


@dataclass
class Quality:
    how: str
    summary: dict[str, Any]
    per_category: pd.DataFrame
    confusion: pd.DataFrame  # most-confused categories: author label x model label
    confused_pairs: pd.DataFrame
    confidence: pd.DataFrame  # per article: the stored confidence and whether top-1 is right
    reliability: pd.DataFrame
    coverage: pd.DataFrame
    risk_coverage: pd.DataFrame  # accuracy of the most confident x%
    routing: pd.DataFrame  # accuracy with the least confident x% (or a random x%) answered
    tag_frequency: pd.DataFrame
    tag_tail: pd.DataFrame
    suspects: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "suspects": self.suspects.to_dict(orient="records")}

    def text(self, out: str) -> str:
        s = self.summary
        return (f"{s['articles']} articles, predictions {self.how}: accuracy "
                f"{s['accuracy_top1']:.3f}, macro-F1 {s['macro_f1']:.3f}, "
                f"ECE {s['ece']:.3f}; "
                f"{len(self.suspects)} likely mislabelled → {out}")


def assess(p: Predictions, suspects: int = 20) -> Quality:
    overall = category_metrics(p.labels, p.sets, p.proba, p.names)
    tags = tag_metrics(p.author_tags, p.tags)
    summary = {"predictions": p.how, "articles": len(p.ids), "categories": len(p.names),
               **{k: overall[k] for k in ("accuracy_top1", "macro_f1_top1", "micro_f1",
                                          "macro_f1", "samples_f1", "labels_per_article")},
               "ece": calibration(*_confidence_and_right(p))["ece"],
               "tag_f1_at_5": tags["f1_at_5"]}
    confusion = confusion_matrix(p)
    return Quality(p.how, summary, per_category(overall, p), most_confused(confusion),
                   confused_pairs(confusion), confidence(p), reliability(p), coverage(p),
                   pd.DataFrame(risk_coverage(*_confidence_and_right(p))),
                   pd.DataFrame(p.routing), tag_frequency(p), tag_tail(p),
                   label_issues(p, suspects))


def per_category(overall: dict[str, Any], p: Predictions) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(overall["per_category"], orient="index")
    table["predicted"] = p.sets.sum(axis=0)
    table.index.name = "category"
    return table.sort_values("support", ascending=False)


def confusion_matrix(p: Predictions) -> pd.DataFrame:
    """Cell (a, b): articles labelled a by the author that the model gave b, which the
    author did not give. The diagonal counts author labels the model found."""
    k = len(p.names)
    counts = np.zeros((k, k), dtype=int)
    for gold, guess in zip(p.labels.astype(bool), p.sets.astype(bool), strict=True):
        for a in np.flatnonzero(gold):
            counts[a, a] += guess[a]
            counts[a, np.flatnonzero(guess & ~gold)] += 1
    return pd.DataFrame(counts, index=pd.Index(p.names, name="author label"),
                        columns=pd.Index(p.names, name="model label"))


def most_confused(confusion: pd.DataFrame, n: int = MOST_CONFUSED) -> pd.DataFrame:
    off = confusion.to_numpy().copy()
    np.fill_diagonal(off, 0)
    involved = off.sum(axis=0) + off.sum(axis=1)
    keep = [j for j in np.argsort(-involved, kind="stable")[:n] if involved[j] > 0]
    return confusion.iloc[keep, keep]


def confused_pairs(confusion: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    pairs = confusion.stack().rename("articles").reset_index()
    pairs = pairs[(pairs["author label"] != pairs["model label"]) & (pairs["articles"] > 0)]
    return pairs.sort_values("articles", ascending=False, kind="stable").head(n)


def _confidence_and_right(p: Predictions) -> tuple[np.ndarray, np.ndarray]:
    return p.confidence, top1_right(p.labels, p.proba)


def confidence(p: Predictions) -> pd.DataFrame:
    conf, right = _confidence_and_right(p)
    return pd.DataFrame({"id": p.ids, "confidence": conf, "correct": right})


def reliability(p: Predictions, bins: int = RELIABILITY_BINS) -> pd.DataFrame:
    """The stored confidence against how often the top category is right, per non-empty
    confidence bin: on the diagonal, a confidence of 0.8 is right 80% of the time."""
    return pd.DataFrame(calibration(*_confidence_and_right(p), bins=bins)["bins"],
                        columns=["low", "high", "articles", "confidence", "accuracy"])


def coverage(p: Predictions, steps: Sequence[float] = COVERAGE_STEPS) -> pd.DataFrame:
    """If only articles at or above a confidence were labelled automatically (the rest sent
    to review): what share that is, and how good their labels are."""
    rows = []
    for t in steps:
        kept = p.confidence >= t
        row = {"threshold": float(t), "articles": int(kept.sum()), "coverage": kept.mean(),
               "accuracy_top1": np.nan, "samples_f1": np.nan}
        if kept.any():
            m = category_metrics(p.labels[kept], p.sets[kept], p.proba[kept], p.names)
            row.update(accuracy_top1=m["accuracy_top1"], samples_f1=m["samples_f1"])
        rows.append(row)
    return pd.DataFrame(rows)


def _counts(tag_lists: Sequence[Sequence[str]]) -> tuple[Counter, dict[str, str]]:
    """Uses per tag (case/width-insensitive) and the first spelling seen of each."""
    counts: Counter = Counter()
    spelling: dict[str, str] = {}
    for tags in tag_lists:
        for tag in dict.fromkeys(label_key(t) for t in tags if label_key(t)):
            counts[tag] += 1
        for t in tags:
            spelling.setdefault(label_key(t), t)
    return counts, spelling


def tag_frequency(p: Predictions) -> pd.DataFrame:
    """Every tag with its uses by the authors and by the model, most used first."""
    author, spelling = _counts(p.author_tags)
    model, model_spelling = _counts(p.tags)
    keys = list(dict.fromkeys([k for k, _ in author.most_common()]
                              + [k for k, _ in model.most_common()]))
    return pd.DataFrame({"tag": [spelling.get(k) or model_spelling[k] for k in keys],
                         "author": [author[k] for k in keys],
                         "model": [model[k] for k in keys]})


def tag_tail(p: Predictions) -> pd.DataFrame:
    """How long the tail is: distinct tags, share used once, share of uses by the top 10%."""
    author_vocabulary = set(_counts(p.author_tags)[0])
    rows = {}
    for who, lists in (("author", p.author_tags), ("model", p.tags)):
        counts = np.array(sorted(_counts(lists)[0].values(), reverse=True))
        top = max(1, len(counts) // 10)
        rows[who] = {"distinct tags": len(counts),
                     "tags per article": sum(len(t) for t in lists) / max(len(lists), 1),
                     "share used once": float((counts == 1).mean()) if len(counts) else 0.0,
                     "uses by the top 10% of tags": float(counts[:top].sum() / counts.sum())
                     if len(counts) else 0.0}
    model_keys = [label_key(t) for tags in p.tags for t in tags]
    rows["model"]["share in the authors' vocabulary"] = (
        sum(k in author_vocabulary for k in model_keys) / max(len(model_keys), 1))
    return pd.DataFrame(rows)


def label_issues(p: Predictions, limit: int = 20) -> pd.DataFrame:
    """Articles whose author labels look wrong, most suspicious first: cleanlab's
    multi-label `find_label_issues` on the out-of-fold probabilities."""
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    support = p.labels.sum(axis=0)
    # cleanlab needs both outcomes in every column; a category nobody labelled (yet) or
    # everybody labelled has nothing to disagree with.
    cols = np.flatnonzero((support > 0) & (support < len(p.labels)))
    columns = ["id", "title", "author labels", "model labels", "label quality",
               "model's top category"]
    if len(cols) < 2 or len(p.labels) < 2:
        return pd.DataFrame(columns=columns)
    labels = [[int(j) for j in np.flatnonzero(row[cols])] for row in p.labels]
    proba = np.clip(p.proba[:, cols], 1e-6, 1 - 1e-6)
    # n_jobs=1: cleanlab's default forks a multiprocessing pool from this process, whose other
    # threads (the embedding cache's writer, a server's) may hold locks at the fork; a pool
    # worker once hung for good so. One process ranks thousands of articles in well under a
    # second.
    ranked = find_label_issues(labels, proba, return_indices_ranked_by="self_confidence",
                               n_jobs=1)
    scores = get_label_quality_scores(labels, proba)
    rows = []
    for i in ranked[:limit]:
        top = int(p.proba[i].argmax())
        rows.append([p.ids[i], p.titles[i], _names(p.labels[i], p.names),
                     _names(p.sets[i], p.names), round(float(scores[i]), 3),
                     f"{p.names[top]} {p.proba[i, top]:.2f}"])
    return pd.DataFrame(rows, columns=columns)


def _names(row: np.ndarray, names: Sequence[str]) -> str:
    return ", ".join(names[j] for j in np.flatnonzero(row))
