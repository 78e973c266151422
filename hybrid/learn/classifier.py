"""Category model: logistic regression over [sentence embedding ⊕ TF-IDF of words and characters].

The feature blocks are fitted as separate logistic regressions and their logits added
with weights learned on out-of-fold scores: still a linear model over the concatenated
features, but the weights adapt to each site (English-heavy blogs lean on words, short
Chinese posts on the embedding, long posts on their titles) without anyone tuning them.
Probabilities are calibrated and thresholds tuned per category on the same out-of-fold
scores; 1..3 categories are chosen per article; the confidence is calibrated on out-of-fold
scores of rows shaped like a new article's. Output columns are the taxonomy's names,
so nothing unauthorized can come out.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline, make_union

from hybrid.evaluation.metrics import calibration, category_metrics, top1_right
from hybrid.learn import linear
from hybrid.learn.char_ngrams import CharNgramCounts
from hybrid.learn.features import Features, doc_head_words, doc_text, doc_words
from hybrid.learn.label_sets import (
    UNTRAINED,
    best_threshold,
    calibrator,
    choose,
    confidence,
    confidence_calibrator,
    expected_f1_sets,
    label_counts,
)
from hybrid.learn.zero_shot import TaxonomyPrior, log_softmax

_WEIGHT_STEP = 0.1
# fused blocks: the transformers whose matrices each logistic regression reads
_BLOCKS = {"embedding": ("embedding",), "lexical": ("lexical",),
           "lexical_title": ("lexical", "title")}
_PRIOR_GRID = np.linspace(0.0, 1.0, 5)
_ACCURACY_SLACK = 0.01
_FEW_ARTICLES = 20
_PROTOTYPE_Z, _PROTOTYPE_SLOPE = 3.0, 2.0


class EmbeddingColumns(BaseEstimator, TransformerMixin):
    """The sentence embeddings of a list of `Features` as a matrix."""

    def fit(self, X: Sequence[Features], y: object = None) -> EmbeddingColumns:
        return self

    def transform(self, X: Sequence[Features]) -> np.ndarray:
        return np.vstack([d.embedding for d in X])


def lexical_features(articles: int = 1000):
    """TF-IDF of segmented words and of character 2-3-grams (robust to segmentation errors).
    A word must occur twice and in at most 90% of the articles, unless there are so few
    (day one's first labels) that no word could."""
    few = articles < _FEW_ARTICLES
    return make_union(
        TfidfVectorizer(analyzer=doc_words, sublinear_tf=True, min_df=1 if few else 2,
                        max_df=1.0 if few else 0.9),
        make_pipeline(CharNgramCounts(preprocessor=doc_text, ngram_range=(2, 3), min_df=2,
                                      max_features=50_000),
                      TfidfTransformer(sublinear_tf=True)))


def title_features():
    """TF-IDF of the title and description words. On long posts the title names the topic
    more reliably than any stretch of body text; on short abstracts it only repeats the body.
    So the lexical model comes twice, with and without it, each fitted jointly, and the
    fusion weights learned per site choose."""
    return TfidfVectorizer(analyzer=doc_head_words, sublinear_tf=True)


class CategoryClassifier(ClassifierMixin, BaseEstimator):
    """`fit(X, Y)` with `X` a list of `Features` and `Y` an (n, n_classes) 0/1 matrix."""

    def __init__(self, classes: Sequence[str] = (), C: float = 10.0, min_categories: int = 1,
                 max_categories: int = 3, inner_folds: int = 3,
                 max_inner_articles: int = 3000, n_jobs: int = 1,
                 random_state: int = 0, taxonomy_prior: TaxonomyPrior | None = None) -> None:
        """`taxonomy_prior`: a fitted `TaxonomyPrior` (the zero-shot scores), fused as one
        more block when it helps; with few labelled articles it often does."""
        self.classes = classes
        self.taxonomy_prior = taxonomy_prior
        self.n_jobs = n_jobs
        self.max_inner_articles = max_inner_articles
        self.C = C
        self.min_categories = min_categories
        self.max_categories = max_categories
        self.inner_folds = inner_folds
        self.random_state = random_state

    def _transformers(self, articles: int) -> dict[str, BaseEstimator]:
        return {"embedding": EmbeddingColumns(), "lexical": lexical_features(articles),
                "title": title_features()}

    def _parts(self, X: Sequence[Features], transformers: Iterable[str], fit: bool = False
               ) -> dict[str, object]:
        return {t: _canonical(self.transformers_[t].fit_transform(X) if fit
                              else self.transformers_[t].transform(X)) for t in transformers}

    def _blocks(self, X: Sequence[Features], blocks: Iterable[str]) -> dict[str, object]:
        """Each transformer runs once; a block is one or more of their matrices side by side."""
        blocks = list(blocks)
        return _stacked(self._parts(X, dict.fromkeys(t for b in blocks for t in _BLOCKS[b])),
                        blocks)

    def fit(self, X: Sequence[Features], Y: np.ndarray,
            prototypes: dict[int, np.ndarray] | None = None) -> CategoryClassifier:
        """`prototypes`: column → embedding of a category's description and keywords, used
        (zero-shot) only for categories that have no training example yet."""
        X = list(X)
        Y = np.asarray(Y, dtype=int)
        if Y.ndim != 2 or Y.shape[1] != len(self.classes):
            raise ValueError(f"Y must be (n_articles, {len(self.classes)}), got {Y.shape}")
        self.classes_ = np.asarray(self.classes, dtype=object)
        self.single_label_ = bool((Y.sum(axis=1) == 1).all())
        self.trained_ = _trainable(Y)
        if self.trained_.sum() < 2:
            raise ValueError("need at least two categories with training examples")
        # The vectorizers see no labels, so they are fitted once on all training text and the
        # inner folds only refit the regressions: the text is vectorized once, not four times.
        self.transformers_ = self._transformers(len(X))
        # Blocks are stacked from their parts when needed, not kept: each full stacked block
        # was another copy of the lexical matrix through the inner folds, training's peak.
        parts = self._parts(X, self.transformers_, fit=True)
        self.log_prior_ = np.where(self.trained_,
                                   np.log(np.clip(Y.mean(axis=0), 1.0 / len(Y), None)), 0.0)
        # Weights, calibration and thresholds need out-of-fold scores, but not for every
        # article: past `max_inner_articles` a random sample keeps training linear in size.
        inner = np.arange(len(X))
        if len(X) > self.max_inner_articles:
            inner = np.sort(np.random.default_rng(self.random_state).choice(
                len(X), self.max_inner_articles, replace=False))
        self.oof_rows_, Y_inner = inner, Y[inner]  # which rows of X got `oof_proba_`
        oof, unseen = self._out_of_fold_scores(_stacked(parts, _BLOCKS, inner), Y_inner)
        if self.taxonomy_prior is not None:  # not learned: its scores need no folds
            oof["taxonomy"] = unseen["taxonomy"] = self._taxonomy_scores([X[i] for i in inner])
        self.block_weights_, self.prior_weight_ = self._best_weights(oof, Y_inner)
        scores = self._fuse(oof)
        self.calibrator_ = calibrator(scores, Y_inner)
        self.oof_proba_ = probabilities = self._calibrate(scores)  # and `oof_rows_`: merges
        self.thresholds_ = np.array([best_threshold(probabilities[:, j], Y_inner[:, j])
                                     for j in range(Y.shape[1])])
        self.label_counts_ = label_counts(Y)
        self.set_rule_ = self._best_set_rule(probabilities, Y_inner)
        self.oof_metrics_ = category_metrics(Y_inner, self._sets(probabilities), probabilities,
                                             list(self.classes))
        new = self._calibrate(self._fuse(unseen))  # held-out rows shaped like new ones
        self.confidence_calibrator_ = confidence_calibrator(new, Y_inner)
        self.oof_metrics_["ece"] = calibration(self.confidence(new),
                                               top1_right(Y_inner, new))["ece"]
        self.block_weights_ = {name: w for name, w in self.block_weights_.items() if w > 0}
        used = [name for name in self.block_weights_ if name in _BLOCKS]
        # softmax: a process per block; one-vs-rest: the blocks in turn, their classes in threads
        per_block = 1 if self.single_label_ else self.n_jobs
        with linear.workers(self.single_label_):
            fitted = Parallel(n_jobs=self.n_jobs if self.single_label_ else 1)(
                delayed(linear.fit)(_stacked(parts, [name])[name], self._target(Y),
                                    self.single_label_, self.C, per_block)
                for name in used)
        self.models_ = dict(zip(used, fitted, strict=True))
        for transformer in self.transformers_.values():
            _drop_pruned_terms(transformer)
        embeddings = EmbeddingColumns().transform(X)
        self.prototypes_ = {}
        for j, vector in (prototypes or {}).items():
            if not self.trained_[j]:
                sims = embeddings @ vector
                self.prototypes_[j] = (vector, float(sims.mean()), float(sims.std()) + 1e-6)
        return self

    def _target(self, Y: np.ndarray) -> np.ndarray:
        Y = Y[:, self.trained_]
        return Y.argmax(axis=1) if self.single_label_ else Y

    def _out_of_fold_scores(self, matrices: dict[str, object], Y: np.ndarray
                            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Each block's out-of-fold scores, and the same fold models' scores on the held-out
        rows shaped like a new article's (`unseen_rows`), which calibrate the confidence:
        calibrated on the first, it was over-confident on every dev set (ECE 0.04-0.08)."""
        scores, unseen = ({name: np.full(Y.shape, UNTRAINED) for name in matrices}
                          for _ in range(2))
        parts = self._tfidf_parts()
        folds = KFold(self.inner_folds, shuffle=True, random_state=self.random_state)
        cells, jobs = [], []
        for train, test in folds.split(Y):
            present = _trainable(Y[train]) & self.trained_
            if present.sum() < 2:
                continue
            sub = Y[train][:, present]
            sub = sub.argmax(axis=1) if self.single_label_ else sub
            for name, matrix in matrices.items():
                cells.append((name, np.ix_(test, np.flatnonzero(present))))
                jobs.append(delayed(linear.fold_logits)(matrix, train, test, sub,
                                                        self.single_label_, self.C,
                                                        parts.get(name)))
        # processes: liblinear's random generator is global, so threads would race on it
        done = Parallel(n_jobs=self.n_jobs)(jobs)
        linear.release_workers(self.n_jobs)  # idle, they held ~250 MB each through the final fits
        for (name, cell), (logits, new) in zip(cells, done, strict=True):
            scores[name][cell] = logits
            unseen[name][cell] = new
        return scores, unseen

    def _tfidf_parts(self) -> dict[str, list[tuple[int, int]]]:
        """Per sparse block, (first column, min_df) of each L2-normalised TF-IDF part."""
        words, chars = (part for _, part in self.transformers_["lexical"].transformer_list)
        counts, title = chars.steps[0][1], self.transformers_["title"]
        lexical = [(0, words.min_df), (len(words.vocabulary_), counts.min_df)]
        end = len(words.vocabulary_) + len(counts.vocabulary_ids_)
        return {"lexical": lexical, "lexical_title": [*lexical, (end, title.min_df)]}

    def _fuse(self, scores: dict[str, np.ndarray], weights: dict[str, float] | None = None,
              tau: float | None = None) -> np.ndarray:
        weights = self.block_weights_ if weights is None else weights
        tau = self.prior_weight_ if tau is None else tau
        return sum(w * scores[name] for name, w in weights.items()) - tau * self.log_prior_

    def _best_weights(self, scores: dict[str, np.ndarray], Y: np.ndarray
                      ) -> tuple[dict[str, float], float]:
        """Block weights and prior correction for the top category, on out-of-fold scores.

        Subtracting tau * log(class frequency) (post-hoc logit adjustment) lets a rare
        category win the top spot when the evidence for it is as strong as for a common one.
        The fused model should beat each block alone on both accuracy and macro-F1: the
        setting with the largest smaller margin over the best single block wins (maximin),
        so neither metric is sold for the other. If none beats them, the best accuracy +
        macro-F1 within `_ACCURACY_SLACK` of the best accuracy.
        """
        names = list(scores)
        steps = round(1 / _WEIGHT_STEP)
        mixes = [dict(zip(names, (n / steps for n in c), strict=True))
                 for c in itertools.product(range(steps + 1), repeat=len(names))
                 if sum(c) == steps]
        grid = [(mix, float(tau)) for tau in _PRIOR_GRID for mix in mixes]
        measured = [_top1_quality(self._fuse(scores, mix, tau).argmax(axis=1), Y)
                    for mix, tau in grid]
        alone = [measured[i] for i, (mix, tau) in enumerate(grid)
                 if tau == 0 and max(mix.values()) == 1]
        floors = np.max(alone, axis=0)
        margins = (np.array(measured) - floors).min(axis=1)
        if margins.max() >= 0:
            return grid[int(np.argmax(margins))]
        floor = max(accuracy for accuracy, _ in measured) - _ACCURACY_SLACK
        admissible = [i for i, (accuracy, _) in enumerate(measured) if accuracy >= floor]
        return grid[max(admissible, key=lambda i: sum(measured[i]))]

    def _calibrate(self, scores: np.ndarray) -> np.ndarray:
        a, b = self.calibrator_
        return 1.0 / (1.0 + np.exp(-np.clip(a * scores + b, -30, 30)))

    def decision_function(self, X: Sequence[Features]) -> np.ndarray:
        X = list(X)
        per_block = {}
        for name, matrix in self._blocks(X, self.models_).items():
            block = np.full((len(X), len(self.classes_)), UNTRAINED)
            block[:, self.trained_] = linear.logits(self.models_[name], matrix)
            per_block[name] = block
        if "taxonomy" in self.block_weights_:
            per_block["taxonomy"] = self._taxonomy_scores(X)
        return self._fuse(per_block)

    def _taxonomy_scores(self, X: Sequence[Features]) -> np.ndarray:
        """Zero-shot log-probabilities, comparable to the softmax blocks' (untrained columns
        included: they have no other evidence)."""
        return log_softmax(self.taxonomy_prior.decision_function(X))

    def predict_proba(self, X: Sequence[Features]) -> np.ndarray:
        probabilities = self._calibrate(self.decision_function(X))
        if self.prototypes_:
            embeddings = EmbeddingColumns().transform(X)
            for j, (vector, mean, std) in self.prototypes_.items():
                # An article far more similar to the description than the training articles
                # are (about 3 standard deviations) is taken to be about the new category.
                z = (embeddings @ vector - mean) / std
                probabilities[:, j] = 1.0 / (1.0 + np.exp(-_PROTOTYPE_SLOPE * (z - _PROTOTYPE_Z)))
        return probabilities

    def predict(self, X: Sequence[Features]) -> np.ndarray:
        return self._sets(self.predict_proba(X))

    def categories(self, probabilities: np.ndarray) -> list[list[int]]:
        """Each article's categories, best first, by the rule chosen out of fold: per-category
        thresholds, or as many as maximise the expected label-set F1 given how many labels
        the site gives an article of the top category (a single-label site: one, unless the
        second is at least half as likely as the first)."""
        if self.set_rule_ == "thresholds":
            return choose(probabilities, self.thresholds_, self.min_categories,
                          self.max_categories)
        return expected_f1_sets(probabilities, self.label_counts_, self.min_categories,
                                self.max_categories)

    def confidence(self, probabilities: np.ndarray) -> np.ndarray:
        """How likely the top category is right, calibrated out of fold."""
        return confidence(self.confidence_calibrator_, probabilities)

    def _best_set_rule(self, probabilities: np.ndarray, Y: np.ndarray) -> str:
        """The rule whose sets score the better label-set (samples) F1 out of fold."""
        scores = {}
        for rule in ("expected_f1", "thresholds"):
            self.set_rule_ = rule
            scores[rule] = f1_score(Y, self._sets(probabilities), average="samples",
                                    zero_division=0)
        return max(scores, key=lambda r: scores[r] + (1e-9 if r == "expected_f1" else 0))

    def _sets(self, probabilities: np.ndarray) -> np.ndarray:
        out = np.zeros(probabilities.shape, dtype=int)
        for i, cols in enumerate(self.categories(probabilities)):
            out[i, cols] = 1
        return out


def _stacked(parts: dict[str, object], blocks: Iterable[str], rows: np.ndarray | None = None
             ) -> dict[str, object]:
    """Each block's transformer matrices side by side, only `rows` of them if given."""
    def pick(matrix: object) -> object:
        return matrix if rows is None else matrix[rows]

    return {block: pick(parts[_BLOCKS[block][0]]) if len(_BLOCKS[block]) == 1
            else sparse.hstack([pick(parts[t]) for t in _BLOCKS[block]], format="csr")
            for block in blocks}


def _canonical(matrix: object) -> object:
    """float32 (the solvers' matrix products take a third of the time of float64's, with the
    same iterations), with sorted sparse indices, done here: the worker processes get a
    read-only memory map, and liblinear would otherwise sort them in place and fail."""
    matrix = matrix.astype(np.float32, copy=False)
    if sparse.issparse(matrix):
        matrix.sum_duplicates()
    return matrix


def _drop_pruned_terms(transformer: BaseEstimator) -> None:
    """TfidfVectorizer keeps every term it pruned (`stop_words_`), only for introspection:
    most of the model file and of its load time."""
    for part in [p for _, p in getattr(transformer, "transformer_list", [])] or [transformer]:
        if hasattr(part, "stop_words_"):
            del part.stop_words_


def _top1_quality(top: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro-F1 of the top category against the gold sets, as
    `category_metrics` reports them (macro over categories in the gold labels or guesses)."""
    guess = np.zeros_like(Y)
    guess[np.arange(len(Y)), top] = 1
    tp = (guess & Y).sum(axis=0)
    counted = (guess.sum(axis=0) + Y.sum(axis=0)) > 0
    f1 = 2 * tp[counted] / (guess.sum(axis=0) + Y.sum(axis=0))[counted]
    return float(Y[np.arange(len(Y)), top].mean()), float(f1.mean())


def _trainable(Y: np.ndarray) -> np.ndarray:
    """Columns with both positives and negatives; the rest get no model."""
    positives = Y.sum(axis=0)
    return (positives > 0) & (positives < len(Y))


