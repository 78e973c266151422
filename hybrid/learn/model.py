"""One trained model: taxonomy + featurizer + category classifier + tagger.

`train` learns it from labelled articles, `predict` labels new ones, and `save`/`load` keep
it as a directory (see `hybrid.learn.artifacts`: nothing loads before it is verified).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import sklearn
from joblib import Parallel, delayed

from hybrid.config import Config
from hybrid.embed import CachedEmbedder, Embedder, make_embedder
from hybrid.errors import ModelError, UsageError
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText, clean
from hybrid.ingest.segment import Segmenter
from hybrid.learn import artifacts
from hybrid.learn.classifier import CategoryClassifier
from hybrid.learn.features import Features, Featurizer
from hybrid.learn.linear import release_workers
from hybrid.learn.prediction import Prediction
from hybrid.learn.segmenters import built_here
from hybrid.learn.tagger import TagSuggester
from hybrid.learn.zero_shot import TaxonomyPrior, ZeroShotClassifier, described
from hybrid.taxonomy import Taxonomy

T = TypeVar("T")
_MIN_PARALLEL_ARTICLES = 1000
# fewer labelled articles than this cannot fill the classifier's inner folds: zero-shot
MIN_LABELLED = 6


class HybridModel:
    def __init__(self, taxonomy: Taxonomy, classifier: CategoryClassifier, tagger: TagSuggester,
                 segmenter: Segmenter, settings: dict[str, Any], train_ids: list[str],
                 manifest: dict[str, Any] | None = None, train_titles: list[str] | None = None,
                 train_categories: list[list[str]] | None = None) -> None:
        """`train_*` are aligned with the FAISS index rows: neighbours become examples."""
        self.taxonomy = taxonomy
        self.classifier = classifier
        self.tagger = tagger
        self.segmenter = segmenter
        self.settings = settings
        self.train_ids = train_ids
        self.train_titles = train_titles or [""] * len(train_ids)
        self.train_categories = train_categories or [[] for _ in train_ids]
        self.manifest = manifest or {}
        self._featurizer: Featurizer | None = None

    # ---- building --------------------------------------------------------------------------
    @staticmethod
    def embedder_for(config: Config) -> CachedEmbedder:
        return CachedEmbedder(make_embedder(config.embedder), config.cache_dir)

    @classmethod
    def train(cls, articles: Sequence[Article], taxonomy: Taxonomy, config: Config,
              embedder: Embedder | None = None, texts: Sequence[CleanText] | None = None,
              progress: Callable[[str], None] = lambda _: None) -> HybridModel:
        """`texts`: the articles already cleaned, when the caller has them (cross-validation)."""
        started = time.perf_counter()
        labels, dropped = [], {}
        for a in articles:
            kept, unknown = taxonomy.map_labels(a.categories)
            labels.append(kept)
            for label in unknown:
                dropped[label] = dropped.get(label, 0) + 1
        if not articles:
            raise UsageError("no articles to train on")
        if len(taxonomy) < 2:
            raise UsageError(f"taxonomy {taxonomy.source} has one category, {taxonomy.names[0]}: "
                             "one category is no classification (every article would get it); "
                             "list the others too")
        why_zero_shot = zero_shot_reason(labels, taxonomy)
        zero_shot = why_zero_shot is not None
        # Tags do not depend on the category list: an article without an authorized category
        # still teaches tags, and a retrain after a list change keeps the same tag model.
        # A zero-shot model keeps every article: they are the tagger's whole corpus.
        kept = [i for i, (a, cats) in enumerate(zip(articles, labels, strict=True))
                if cats or a.tags or zero_shot]
        skipped = len(articles) - len(kept)
        articles = [articles[i] for i in kept]
        texts = [texts[i] for i in kept] if texts is not None else None
        labels = [labels[i] for i in kept]
        labelled = [n for n, cats in enumerate(labels) if cats]
        embedder = embedder or cls.embedder_for(config)
        segmenter = Segmenter(config.user_dict, config.user_stopwords,
                              vocabulary=[t for a in articles for t in a.tags])
        featurizer = Featurizer(embedder, segmenter, config.embed_budget, config.tag_prefix_chars)
        progress(f"featurizing {len(articles)} articles")
        stages = {}
        X = _timed(stages, "featurize", _featurize,
                   _training_featurizers(featurizer, articles, config), articles, texts,
                   config.workers)
        release_workers(config.workers)
        Y = np.array([[int(n in labels[i]) for n in taxonomy.names] for i in labelled]
                     ).reshape(len(labelled), len(taxonomy))
        progress("fitting the zero-shot category model" if zero_shot else
                 "fitting the category classifier")
        classifier = _timed(stages, "classifier", _category_model, taxonomy, embedder, config,
                            [X[i] for i in labelled], Y, zero_shot)
        release_workers(config.workers)
        progress("fitting the tagger")
        tagger = _timed(stages, "tagger", TagSuggester(
            n_tags=config.n_tags, aliases=_read_aliases(config.tag_aliases), embedder=embedder
        ).fit, X, [a.tags for a in articles])
        settings = {"embedder": config.embedder, "embedder_id": embedder.id,
                    "embed_budget": config.embed_budget,
                    "tag_prefix_chars": config.tag_prefix_chars}
        model = cls(taxonomy, classifier, tagger, segmenter, settings, [a.id for a in articles],
                    train_titles=[a.title for a in articles], train_categories=labels)
        model._featurizer = featurizer
        model.manifest = {
            "zero_shot": zero_shot,
            "metrics": {"out_of_fold": True, **classifier.oof_metrics_} if not zero_shot else {},
            "training": {"articles": len(labelled),
                         "tag_only_articles": len(articles) - len(labelled),
                         "skipped_unlabelled": skipped,
                         "zero_shot_reason": why_zero_shot,
                         "dropped_labels": dropped,
                         "label_counts": dict(zip(taxonomy.names, Y.sum(axis=0).tolist(),
                                                  strict=True)),
                         "seconds": round(time.perf_counter() - started, 2),
                         "stage_seconds": {k: round(v, 2) for k, v in stages.items()}},
        }
        return model

    @property
    def zero_shot(self) -> bool:
        return bool(self.manifest.get("zero_shot"))

    def summary(self, where: str | Path) -> str:
        """What training did, in two or three lines."""
        training, metrics = self.manifest["training"], self.manifest["metrics"]
        if self.zero_shot:
            text = (f"{training['zero_shot_reason']}: a zero-shot model (categories from the "
                    "taxonomy's names, descriptions, keywords and aliases; tags from the text "
                    f"of {training['articles'] + training['tag_only_articles']} articles) in "
                    f"{training['seconds']:.1f}s → {where}")
        else:
            text = (f"trained on {training['articles']} articles in "
                    f"{training['seconds']:.1f}s → {where}\nout-of-fold accuracy "
                    f"{metrics['accuracy_top1']:.3f}, macro-F1 {metrics['macro_f1_top1']:.3f}")
        if training["dropped_labels"]:
            text += ("\nlabels not in the taxonomy (dropped, not learned): "
                     f"{training['dropped_labels']}")
        return text

    @property
    def featurizer(self) -> Featurizer:
        if self._featurizer is None:
            raise ModelError("model has no embedder attached: use HybridModel.load")
        return self._featurizer

    def attach(self, embedder: Embedder) -> None:
        if embedder.id != self.settings["embedder_id"]:
            raise ModelError(f"model was trained with embedder {self.settings['embedder_id']!r}, "
                             f"not {embedder.id!r}")
        self.tagger.embedder = embedder
        self._featurizer = Featurizer(embedder, self.segmenter, self.settings["embed_budget"],
                                      self.settings["tag_prefix_chars"])

    # ---- predicting ------------------------------------------------------------------------
    def featurize(self, texts: Sequence[CleanText]) -> list[Features]:
        return self.featurizer.transform(texts)

    def predict(self, articles: Sequence[Article], explain: bool = False) -> list[Prediction]:
        """Predictions in input order; an article that fails gets `error` instead of labels."""
        out: list[Prediction | None] = [None] * len(articles)
        texts: list[CleanText] = []
        where: list[int] = []
        for i, article in enumerate(articles):
            try:
                texts.append(clean(article))
                where.append(i)
            except Exception as exc:  # a parser crash on one article must not stop the batch
                out[i] = Prediction(article.id, flags=list(article.flags),
                                    error=f"article {article.id!r}, field 'content': {exc}")
        if texts:
            for i, pred in zip(where, self.predict_features(
                    self.featurize(texts), [articles[i].id for i in where], texts, explain),
                    strict=True):
                out[i] = pred
        return out  # type: ignore[return-value]

    def predict_features(self, X: Sequence[Features], ids: Sequence[str],
                         texts: Sequence[CleanText], explain: bool = False) -> list[Prediction]:
        # Our own features, from fitted estimators: scikit-learn's checks of every input
        # and parameter cost ~1.5 ms a call, a tenth of a lone article's time in `serve`.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            probabilities = self.classifier.predict_proba(X)
            tags = (self.tagger.suggest_explained(X) if explain
                    else [(t, []) for t in self.tagger.suggest(X)])
        chosen = self.classifier.categories(probabilities)
        confidence = self.classifier.confidence(probabilities)
        names = self.taxonomy.names
        neighbours = self.tagger.neighbours(X) if explain else None
        preds = []
        for i, (row, cols, (tag_scores, dropped)) in enumerate(zip(probabilities, chosen, tags,
                                                                    strict=True)):
            pred = Prediction(
                id=ids[i],
                categories=[names[j] for j in cols],
                tags=[t.tag for t in tag_scores],
                confidence=round(float(confidence[i]), 4),  # that the top category is right
                scores={n: round(float(p), 4) for n, p in zip(names, row, strict=True)},
                flags=list(texts[i].flags),
                zero_shot=self.zero_shot,
            )
            if neighbours is not None:
                sims, idx = neighbours[0][i], neighbours[1][i]
                pred.neighbours = [
                    {"id": self.train_ids[j], "similarity": round(float(s), 4),
                     "tags": self.tagger.train_tags_[j]}
                    for s, j in zip(sims, idx, strict=True) if j >= 0]
                pred.keyword_scores = [asdict(t) for t in tag_scores]
                pred.dropped_tags = [asdict(t) for t in dropped]
            preds.append(pred)
        return preds

    # ---- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path, key: str | None = None) -> Path:
        """`key`: sign the manifest (HMAC-SHA256), for model directories others can write."""
        training = {"settings": self.settings, "train_ids": self.train_ids,
                    "train_titles": self.train_titles, "train_categories": self.train_categories}
        parts = artifacts.Parts({**self.manifest, "embedder": self.settings["embedder"],
                                 "embedder_id": self.settings["embedder_id"],
                                 "metrics": self.manifest.get("metrics", {})},
                                self.taxonomy, self.classifier, self.tagger, self.segmenter,
                                training, self.tagger.index_)
        self.manifest = artifacts.save(directory, parts, key)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, taxonomy: Taxonomy | None = None,
             config: Config | None = None, embedder: Embedder | None = None) -> HybridModel:
        config = config or Config()
        parts = artifacts.load(directory, taxonomy, config.model_key)
        training = parts.training
        parts.tagger.index_ = parts.index
        model = cls(parts.taxonomy, parts.classifier, parts.tagger, parts.segmenter,
                    training["settings"], training["train_ids"], parts.manifest,
                    training["train_titles"], training["train_categories"])
        model.attach(embedder or CachedEmbedder(make_embedder(training["settings"]["embedder"]),
                                                config.cache_dir))
        return model


def _training_featurizers(featurizer: Featurizer, articles: Sequence[Article],
                          config: Config) -> list[Featurizer]:
    """Article i is featurized by featurizer i % 2, whose tag candidates come from a dictionary
    of the other half's tags. With its own tags in the dictionary an article's keywords are
    always whole words; in a new article they are often split. The tag ranker would then learn
    from easier candidates than it meets."""
    out = []
    for half in (0, 1):
        others = Segmenter(config.user_dict, config.user_stopwords,
                           vocabulary=[t for a in articles[1 - half::2] for t in a.tags])
        out.append(Featurizer(featurizer.embedder, featurizer.segmenter, featurizer.embed_budget,
                              featurizer.tag_prefix_chars, candidate_segmenter=others))
    return out


def _featurize(featurizers: list[Featurizer], articles: Sequence[Article],
               texts: Sequence[CleanText] | None, workers: int) -> list[Features]:
    """Clean (unless `texts` are given) and featurize article i with featurizer i % k, in
    `workers` processes when there is enough text to pay for starting them: these are the
    per-article costs of training."""
    k = len(featurizers)
    parallel = workers > 1 and len(articles) >= _MIN_PARALLEL_ARTICLES
    pieces = workers * 2 if parallel else 1
    jobs = [(featurizer, chunk) for h, featurizer in enumerate(featurizers)
            for chunk in np.array_split(np.arange(h, len(articles), k), pieces) if len(chunk)]
    parts = Parallel(n_jobs=workers if parallel else 1)(
        delayed(_clean_and_featurize)(featurizer, [articles[i] for i in chunk],
                                      None if texts is None else [texts[i] for i in chunk],
                                      in_worker=parallel)
        for featurizer, chunk in jobs)
    out: list[Features | None] = [None] * len(articles)
    embedder = featurizers[0].embedder
    for (_, chunk), (part, hits, misses) in zip(jobs, parts, strict=True):
        for i, features in zip(chunk, part, strict=True):
            out[i] = features
        if parallel and isinstance(embedder, CachedEmbedder):
            # the workers counted in their copies: the training report needs them here
            embedder.hits += hits
            embedder.misses += misses
    return out  # type: ignore[return-value]


def _timed(seconds: dict[str, float], stage: str, fit: Callable[..., T], *args: Any) -> T:
    """`fit(*args)`, its wall seconds kept in `seconds[stage]` (the training report's)."""
    started = time.perf_counter()
    done = fit(*args)
    seconds[stage] = time.perf_counter() - started
    return done


def _clean_and_featurize(featurizer: Featurizer, articles: Sequence[Article],
                         texts: Sequence[CleanText] | None, in_worker: bool = False
                         ) -> tuple[list[Features], int, int]:
    """The features, and the embedding-cache hits and misses that computing them took.
    `in_worker`: in a worker process, which keeps the segmenters it built for its next job."""
    if in_worker:
        featurizer.segmenter = built_here(featurizer.segmenter)
        if featurizer.candidate_segmenter is not None:
            featurizer.candidate_segmenter = built_here(featurizer.candidate_segmenter)
    embedder = featurizer.embedder
    counted = isinstance(embedder, CachedEmbedder)
    before = (embedder.hits, embedder.misses) if counted else (0, 0)
    features = featurizer.transform(texts if texts is not None else [clean(a) for a in articles])
    if not counted:
        return features, 0, 0
    embedder.flush()  # the parent reads these vectors next
    return features, embedder.hits - before[0], embedder.misses - before[1]


def zero_shot_reason(labels: Sequence[Sequence[str]], taxonomy: Taxonomy) -> str | None:
    """Why articles with these authorized categories train no classifier (the model is then
    zero-shot), or None if they do. A classifier needs `MIN_LABELLED` labelled articles, and
    two categories that each have labelled examples and counter-examples."""
    labelled = sum(1 for cats in labels if cats)
    if not labelled:
        return "no labelled articles"
    if labelled < MIN_LABELLED:
        return f"{labelled} labelled articles, fewer than the {MIN_LABELLED} a classifier needs"
    counts = Counter(name for cats in labels for name in cats)
    trainable = [name for name in taxonomy.names if 0 < counts[name] < labelled]
    if len(trainable) >= 2:
        return None
    everywhere = [name for name in taxonomy.names if counts[name] == labelled]
    found = (f"only {trainable[0]} has labelled articles both in it and outside it" if trainable
             else f"all of them are in {', '.join(everywhere)} and in no other category")
    return (f"{labelled} labelled articles, but {found} (a classifier needs two categories, "
            "each with labelled articles in it and outside it)")


def _category_model(taxonomy: Taxonomy, embedder: Embedder, config: Config,
                    X: list[Features], Y: np.ndarray, zero_shot: bool
                    ) -> CategoryClassifier | ZeroShotClassifier:
    """Zero-shot without labels; else the trained classifier, with the taxonomy's own
    scores as one more block when the list says more than its names."""
    prior = TaxonomyPrior(taxonomy, embedder)
    if zero_shot:
        return ZeroShotClassifier(prior, config.min_categories, config.max_categories).fit()
    classifier = CategoryClassifier(
        taxonomy.names, min_categories=config.min_categories,
        max_categories=config.max_categories, n_jobs=config.workers,
        taxonomy_prior=prior.fit() if described(taxonomy) else None)
    return classifier.fit(X, Y, prototypes=_prototypes(taxonomy, Y, embedder))


def _prototypes(taxonomy: Taxonomy, Y: np.ndarray, embedder: Embedder) -> dict[int, np.ndarray]:
    """Embeddings of the descriptions and keywords of categories without labelled articles,
    so a category added to the list is predicted before anyone has labelled examples of it."""
    described = {j: " ".join([c.name, c.description, *c.keywords])
                 for j, c in enumerate(taxonomy.categories)
                 if not Y[:, j].any() and (c.description or c.keywords)}
    if not described:
        return {}
    vectors = embedder.embed(list(described.values()))
    return dict(zip(described, vectors, strict=True))


def _read_aliases(path: str | None) -> dict[str, str] | None:
    """Tag alias map: a JSON object {"K8s": "kubernetes", ...}."""
    if not path:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: tag aliases must be a JSON object of strings")
    return data
