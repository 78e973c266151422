"""What the model says about every article a suggestion reads, computed once: features,
probabilities, confidence, the categories it would give, the tags of the untagged; and each
category's prototype."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from sklearn.preprocessing import normalize

from hybrid.ingest.article import Article
from hybrid.ingest.clean import clean
from hybrid.learn.features import Features
from hybrid.learn.model import HybridModel


@dataclass
class Corpus:
    """Per article, in the same order. `labels`: the authorized names people gave it;
    `tags`: the tags people gave it."""

    ids: list[str]
    titles: list[str]
    labels: list[list[str]]
    tags: list[list[str]]
    dates: list[date | None]
    features: list[Features]
    embeddings: np.ndarray  # (n, d), unit length
    proba: np.ndarray  # (n, k) calibrated, columns = the taxonomy's names
    confidence: np.ndarray  # (n,) that the top category is right
    predicted: list[list[str]]  # the categories the model would give
    failed: list[str]  # articles whose text could not be read, with why

    def __len__(self) -> int:
        return len(self.ids)

    def categories(self, i: int) -> list[str]:
        """What article `i` is filed under: its people's labels, else the model's."""
        return self.labels[i] or self.predicted[i]


def read_corpus(model: HybridModel, articles: Sequence[Article]) -> Corpus:
    """Featurize and predict every article; one that cannot be cleaned is left out and
    named in `failed`."""
    kept, texts, failed = [], [], []
    for article in articles:
        try:
            texts.append(clean(article))
            kept.append(article)
        except Exception as exc:  # one bad article must not stop the suggestion
            failed.append(f"article {article.id!r}, field 'content': {exc}")
    features = model.featurize(texts) if texts else []
    names = model.taxonomy.names
    proba = (model.classifier.predict_proba(features) if features
             else np.zeros((0, len(names))))
    chosen = model.classifier.categories(proba) if features else []
    return Corpus(
        ids=[a.id for a in kept], titles=[a.title for a in kept],
        labels=[model.taxonomy.map_labels(a.categories)[0] for a in kept],
        tags=[list(a.tags) for a in kept], dates=[a.published for a in kept],
        features=features,
        embeddings=(normalize(np.vstack([f.embedding for f in features])) if features
                    else np.zeros((0, 1))),
        proba=proba, confidence=model.classifier.confidence(proba) if features
        else np.zeros(0),
        predicted=[[names[j] for j in cols] for cols in chosen], failed=failed)


def prototypes(model: HybridModel) -> dict[str, np.ndarray]:
    """Each category's mean training embedding (unit length), from the model's neighbour
    index: what a typical article of the category looks like to the model. A category the
    model has no training article of has none."""
    index = model.tagger.index_
    if index is None or not index.ntotal:
        return {}
    vectors = normalize(index.reconstruct_n(0, index.ntotal))
    rows: dict[str, list[int]] = {}
    for i, names in enumerate(model.train_categories):
        for name in names:
            rows.setdefault(name, []).append(i)
    return {name: normalize(vectors[rows[name]].mean(axis=0, keepdims=True))[0]
            for name in model.taxonomy.names if name in rows}


def article_tags(corpus: Corpus, rows: Sequence[int], model: HybridModel) -> list[list[str]]:
    """Every article's tags: people's; for those of `rows` without any, the model's (a
    group's tags are evidence for joining it and for naming it)."""
    tags = [list(t) for t in corpus.tags]
    untagged = [int(i) for i in rows if not corpus.tags[i]]
    if untagged:
        suggested = model.tagger.suggest([corpus.features[i] for i in untagged])
        for i, scored in zip(untagged, suggested, strict=True):
            tags[i] = [t.tag for t in scored]
    return tags
