"""Category scores from the taxonomy alone: what day one has before anyone labels an article.

Each category becomes an embedding prototype (the mean of its name, its name with its
description, and its keywords and aliases, embedded) and a set of terms (name, keywords,
aliases) counted in the title and text. An article's score for a category is
`SCALE * cosine(article, prototype) + log(1 + hits)`, title hits counting three times.

On the development sets, with descriptions and keywords written for their names, this took
top-1 accuracy from 0.25 (cosine to the embedded name) to 0.46-0.66 (`scripts/
bench_bootstrap.py`). Centring the embeddings or standardising each category's scores over
the corpus, which often help zero-shot classification, lost accuracy on every set: they
erase the site's category frequencies, which a raw cosine keeps.

`TaxonomyPrior` gives the scores; `ZeroShotClassifier` turns them into the classifier's
interface, so a zero-shot model saves, loads, predicts and explains like a trained one. With
a few labelled articles the prior is one more block the trained classifier may weigh.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from hybrid.embed.base import Embedder, normalize_rows
from hybrid.ingest.keys import label_key
from hybrid.learn.features import Features
from hybrid.taxonomy import Taxonomy

SCALE = 10.0  # cosine differences are ~0.1 where term counts differ by ~1
_TITLE_WEIGHT = 3


def category_texts(taxonomy: Taxonomy) -> list[list[str]]:
    """What each category is embedded from: its name, its name with its description, and
    its keywords and aliases."""
    out = []
    for c in taxonomy.categories:
        texts = [c.name]
        if c.description:
            texts.append(f"{c.name}：{c.description}")
        out.append(texts + [t for t in (*c.keywords, *c.aliases) if t.strip()])
    return out


def described(taxonomy: Taxonomy) -> bool:
    """Whether the list says more than its names (descriptions, keywords or aliases)."""
    return any(c.description or c.keywords or c.aliases for c in taxonomy.categories)


def _pattern(term: str) -> re.Pattern[str]:
    """A term as a whole word where it is Latin (`os` is not in `cost`), anywhere in CJK."""
    key = re.escape(label_key(term))
    return re.compile(rf"(?<![a-z0-9]){key}(?![a-z0-9])" if key.isascii() else key)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class TaxonomyPrior(BaseEstimator):
    """`fit()` embeds the categories; `decision_function(X)` gives (n, k) scores."""

    def __init__(self, taxonomy: Taxonomy | None = None, embedder: Embedder | None = None
                 ) -> None:
        self.taxonomy = taxonomy
        self.embedder = embedder

    def __getstate__(self) -> dict:
        return {**self.__dict__, "embedder": None, "_patterns": None}

    def fit(self, X: object = None, y: object = None) -> TaxonomyPrior:
        groups = category_texts(self.taxonomy)
        vectors = self.embedder.embed([t for group in groups for t in group])
        prototypes, start = [], 0
        for group in groups:
            prototypes.append(vectors[start:start + len(group)].mean(axis=0))
            start += len(group)
        self.prototypes_ = normalize_rows(np.vstack(prototypes))
        self.terms_ = [list(dict.fromkeys(label_key(t) for t in (c.name, *c.keywords,
                                                                  *c.aliases) if t.strip()))
                       for c in self.taxonomy.categories]
        return self

    @property
    def patterns(self) -> list[list[re.Pattern[str]]]:
        if getattr(self, "_patterns", None) is None:
            self._patterns = [[_pattern(t) for t in terms] for terms in self.terms_]
        return self._patterns

    def decision_function(self, X: Sequence[Features]) -> np.ndarray:
        semantic = np.vstack([d.embedding for d in X]) @ self.prototypes_.T
        lexical = np.zeros_like(semantic)
        for i, doc in enumerate(X):
            title, text = label_key(doc.title), label_key(doc.lexical)
            for j, group in enumerate(self.patterns):
                lexical[i, j] = sum(_TITLE_WEIGHT * len(p.findall(title)) + len(p.findall(text))
                                    for p in group)
        return SCALE * semantic + np.log1p(lexical)


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    """The category model of a site with no labels yet: the prior's scores as probabilities
    (a softmax), one category per article unless a second is as likely as not."""

    def __init__(self, prior: TaxonomyPrior | None = None, min_categories: int = 1,
                 max_categories: int = 3) -> None:
        self.prior = prior
        self.min_categories = min_categories
        self.max_categories = max_categories

    def fit(self, X: object = None, y: object = None) -> ZeroShotClassifier:
        self.prior.fit()
        self.classes_ = np.asarray(self.prior.taxonomy.names, dtype=object)
        self.thresholds_ = np.full(len(self.classes_), 0.5)
        self.oof_metrics_: dict = {}
        return self

    def decision_function(self, X: Sequence[Features]) -> np.ndarray:
        return self.prior.decision_function(X)

    def predict_proba(self, X: Sequence[Features]) -> np.ndarray:
        return np.exp(log_softmax(self.decision_function(X)))

    def categories(self, probabilities: np.ndarray) -> list[list[int]]:
        """One category, and a second only as likely as not: nothing here knows how many
        the site gives an article."""
        return [[int(j) for j in np.argsort(-row, kind="stable")[:self.max_categories]
                 if row[j] >= 0.5 or j == row.argmax()] for row in probabilities]

    def confidence(self, probabilities: np.ndarray) -> np.ndarray:
        """The top probability, uncalibrated: there is nothing to calibrate it on yet."""
        return probabilities.max(axis=1)
