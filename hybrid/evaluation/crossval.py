"""Cross-validation and held-out evaluation of our model against the baselines, in one run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from hybrid.config import Config
from hybrid.embed import Embedder
from hybrid.evaluation import baselines, defects, routing
from hybrid.evaluation.metrics import (
    calibration,
    category_metrics,
    risk_coverage,
    tag_metrics,
    top1_right,
)
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText, clean
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import Taxonomy

Progress = Callable[[str], None]


def label_matrix(articles: Sequence[Article], taxonomy: Taxonomy) -> np.ndarray:
    rows = [taxonomy.map_labels(a.categories)[0] for a in articles]
    return np.array([[int(n in r) for n in taxonomy.names] for r in rows])


def cv_folds(Y: np.ndarray, n_folds: int, seed: int):
    """Stratify on the first label when every class is common enough, else plain K-fold."""
    first = Y.argmax(axis=1)
    counts = np.bincount(first, minlength=Y.shape[1])
    if counts[counts > 0].min() >= n_folds:
        return StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(Y, first)
    return KFold(n_folds, shuffle=True, random_state=seed).split(Y)


def predict_split(model: HybridModel, train: Sequence[Article], test: Sequence[Article],
                  train_texts: Sequence[CleanText] | None, test_texts: Sequence[CleanText],
                  taxonomy: Taxonomy) -> dict[str, dict[str, Any]]:
    """Raw outputs on `test` of our model and of the baselines (LR ones trained on `train`)."""
    names = taxonomy.names
    X_test = model.featurize(test_texts)
    preds = model.predict_features(X_test, [a.id for a in test], test_texts)
    vocabulary = model.tagger.tag_count_
    jieba = [baselines.jieba_tags(t.lexical_text()) for t in test_texts]
    out: dict[str, dict[str, Any]] = {
        "hybrid": {
            "proba": np.array([[p.scores[n] for n in names] for p in preds]),
            "sets": np.array([[int(n in p.categories) for n in names] for p in preds]),
            "confidence": np.array([p.confidence for p in preds]),
            "predictions": preds, "tags": [p.tags for p in preds],
            "flaws": _flaws([p.tags for p in preds], test_texts, vocabulary)},
        "jieba_extract_tags": {"tags": jieba, "flaws": _flaws(jieba, test_texts, vocabulary)},
    }
    if train_texts is not None:
        Y_train = label_matrix(train, taxonomy)
        keep = Y_train.sum(axis=1) > 0
        kept = [t for t, k in zip(train_texts, keep, strict=True) if k]
        tfidf = baselines.fit_predict_proba(
            baselines.tfidf_lr, [t.lexical_text() for t in kept], Y_train[keep],
            [t.lexical_text() for t in test_texts])
        emb = baselines.fit_predict_proba(baselines.embedding_lr, model.featurize(kept),
                                          Y_train[keep], X_test)
        for name, proba in (("tfidf_lr", tfidf), ("embedding_lr", emb)):
            out[name] = {"proba": proba, "sets": baselines.label_sets(proba)}
    return out


def _flaws(tags: Sequence[Sequence[str]], texts: Sequence[CleanText],
           vocabulary: Counter) -> list[dict[str, int]]:
    return [defects.flaws(t, " ".join((x.title, x.description, x.body, x.code)), vocabulary)
            for t, x in zip(tags, texts, strict=True)]


def _pool(parts: Sequence[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    pooled: dict[str, dict[str, Any]] = {}
    for method in parts[0]:
        pooled[method] = {}
        for key, first in parts[0][method].items():
            values = [p[method][key] for p in parts]
            pooled[method][key] = (np.concatenate(values) if isinstance(first, np.ndarray)
                                   else [x for v in values for x in v])
    return pooled


def score(outputs: dict[str, dict[str, Any]], articles: Sequence[Article],
          taxonomy: Taxonomy, config: Config) -> dict[str, Any]:
    """Every method's category and tag metrics and tag defects; for ours also the calibration
    of its confidence, the risk-coverage curve and the routing ceiling."""
    Y = label_matrix(articles, taxonomy)
    gold_tags = [a.tags for a in articles]
    report: dict[str, Any] = {}
    for method, out in outputs.items():
        report[method] = {}
        if "proba" in out:
            report[method]["categories"] = category_metrics(Y, out["sets"], out["proba"],
                                                            taxonomy.names)
        if "tags" in out:
            report[method]["tags"] = tag_metrics(gold_tags, out["tags"])
            report[method]["defects"] = defects.count(out["flaws"])
        if "confidence" in out:
            right = top1_right(Y, out["proba"])
            report[method]["confidence"] = {
                **calibration(out["confidence"], right),
                "risk_coverage": risk_coverage(out["confidence"], right),
                "routing": routing.ceiling(articles, out["predictions"], taxonomy, config)}
    return report


def out_of_fold_outputs(articles: Sequence[Article], taxonomy: Taxonomy, config: Config,
                n_folds: int = 5, seed: int = 0, embedder: Embedder | None = None,
                progress: Progress = lambda _: None, with_baselines: bool = True,
                ) -> tuple[list[Article], dict[str, dict[str, Any]]]:
    """The labelled articles, in input order, and every method's outputs for them, each from a
    model trained on the other folds (what cross-validation and cleanlab need)."""
    embedder = embedder or HybridModel.embedder_for(config)
    articles = [a for a, y in zip(articles, label_matrix(articles, taxonomy), strict=True)
                if y.any()]
    texts = [clean(a) for a in articles]
    parts, order = [], []
    splits = cv_folds(label_matrix(articles, taxonomy), n_folds, seed)
    for fold, (train, test) in enumerate(splits, 1):
        progress(f"fold {fold}/{n_folds}: training on {len(train)} articles")
        train_articles = [articles[i] for i in train]
        train_texts = [texts[i] for i in train]
        model = HybridModel.train(train_articles, taxonomy, config, embedder=embedder,
                                  texts=train_texts)
        progress(f"fold {fold}/{n_folds}: scoring {len(test)} articles")
        parts.append(predict_split(model, train_articles, [articles[i] for i in test],
                                   train_texts if with_baselines else None,
                                   [texts[i] for i in test], taxonomy))
        order.extend(test)
    inverse = np.argsort(order)
    pooled = {method: {key: value[inverse] if isinstance(value, np.ndarray)
                       else [value[i] for i in inverse] for key, value in out.items()}
              for method, out in _pool(parts).items()}
    return articles, pooled


def cross_validate(articles: Sequence[Article], taxonomy: Taxonomy, config: Config,
                   n_folds: int = 5, seed: int = 0, embedder: Embedder | None = None,
                   progress: Progress = lambda _: None) -> dict[str, Any]:
    """Out-of-fold predictions of every method, pooled over the folds, then scored once."""
    articles, outputs = out_of_fold_outputs(articles, taxonomy, config, n_folds, seed,
                                            embedder, progress)
    return {"folds": n_folds, "articles": len(articles), "taxonomy": taxonomy.fingerprint,
            "methods": score(outputs, articles, taxonomy, config)}


def evaluate(model: HybridModel, articles: Sequence[Article], config: Config,
             baseline_train: Sequence[Article] | None = None) -> dict[str, Any]:
    texts = [clean(a) for a in articles]
    train_texts = [clean(a) for a in baseline_train] if baseline_train else None
    outputs = predict_split(model, baseline_train or [], articles, train_texts, texts,
                            model.taxonomy)
    return {"articles": len(articles), "taxonomy": model.taxonomy.fingerprint,
            "methods": score(outputs, articles, model.taxonomy, config)}
