"""hybrid.learn.classifier: the category model on synthetic features."""

from __future__ import annotations

import numpy as np
import psutil
from helpers import synthetic_features
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from hybrid.learn import linear
from hybrid.learn.classifier import CategoryClassifier
from hybrid.learn.features import Features
from hybrid.learn.label_sets import (
    calibrator,
    confidence_calibrator,
    expected_f1_sets,
    unseen_rows,
)


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
    X, Y = long_multi_label_posts()
    clf = CategoryClassifier(["a", "b", "c"], n_jobs=2).fit(X, Y)
    assert not clf.single_label_
    assert clf.predict(X).shape == (300, 3)


def test_inner_fold_workers_are_gone_before_the_final_fits(monkeypatch):
    """The inner folds' worker processes idled through the final fits holding ~250 MB each
    (the peak of a 5,500-post training); and in processes, the folds give what one process
    gives (liblinear's random generator is global: threads would race on it)."""
    X, Y = long_multi_label_posts()
    workers_at_final_fits, fit = [], linear.fit

    def recorded(*args: object, inner: bool = False) -> object:
        if not inner:
            workers_at_final_fits.append(sum("LokyProcess" in " ".join(child.cmdline())
                                             for child in psutil.Process().children()))
        return fit(*args, inner=inner)

    monkeypatch.setattr(linear, "fit", recorded)
    two = CategoryClassifier(["a", "b", "c"], n_jobs=2).fit(X, Y)
    assert workers_at_final_fits and set(workers_at_final_fits) == {0}
    one = CategoryClassifier(["a", "b", "c"], n_jobs=1).fit(X, Y)
    np.testing.assert_array_equal(two.oof_proba_, one.oof_proba_)


def long_multi_label_posts(n: int = 300) -> tuple[list[Features], np.ndarray]:
    """Multi-label articles with over 1 MB of character n-grams (joblib memory-maps arrays
    past 1 MB for worker processes)."""
    rng = np.random.default_rng(2)
    alphabet = np.array([chr(0x4E00 + i) for i in range(150)])
    X = synthetic_features(rng, n)
    for x in X:
        x.lexical = "".join(rng.choice(alphabet, 800))
    Y = np.zeros((n, 3), dtype=int)
    Y[:, 0] = 1
    Y[:, 1] = [x.embedding[0] > 0 for x in X]
    Y[:, 2] = 1 - Y[:, 1]
    return X, Y


def test_classifier_uses_softmax_for_single_label_data():
    rng = np.random.default_rng(1)
    X = synthetic_features(rng, 45)
    Y = np.eye(3, dtype=int)[[int(x.embedding[0] > 0) + int(x.embedding[1] > 0) for x in X]]
    clf = CategoryClassifier(["a", "b", "c"], min_categories=1, max_categories=1).fit(X, Y)
    assert clf.single_label_
    assert (clf.predict(X).sum(axis=1) == 1).all()
    proba = clf.predict_proba(X)
    assert ((proba >= 0) & (proba <= 1)).all()


def test_expected_f1_gives_a_single_label_site_one_category_unless_two_are_likely():
    counts = np.array([1.0, 1.0, 2.0])  # articles of the third category carry two labels
    rows = np.array([[0.60, 0.29, 0.11],    # second less than half the first: one
                     [0.50, 0.40, 0.10],    # second genuinely likely: two
                     [0.45, 0.10, 0.45]])   # top is the two-label category: two
    assert expected_f1_sets(rows, counts, 1, 3) == [[0], [0, 1], [0, 2]]
    assert expected_f1_sets(rows, counts, 1, 1) == [[0], [0], [0]]


def test_a_single_label_site_gets_one_category_and_calibrated_confidence():
    """Multi-label training data (a one-vs-rest model) whose articles mostly carry one label:
    the set rule learns that, and the confidence says how often the top one is right."""
    rng = np.random.default_rng(3)
    X = synthetic_features(rng, 400)
    truth = rng.integers(0, 4, 400)
    for x, c in zip(X, truth, strict=True):
        x.embedding[c] += 2.0  # four clusters, overlapping at their edges
    noisy = np.where(rng.random(400) < 0.1, rng.integers(0, 4, 400), truth)
    Y = np.eye(4, dtype=int)[noisy]
    Y[np.arange(8), (noisy[:8] + 1) % 4] = 1  # a few two-label articles: multi-label
    clf = CategoryClassifier(["a", "b", "c", "d"], max_categories=3).fit(X[:300], Y[:300])
    assert not clf.single_label_
    proba = clf.predict_proba(X[300:])
    sets = clf.categories(proba)
    right = Y[300:][np.arange(100), proba.argmax(axis=1)]
    set_f1 = [2 * Y[300 + i, s].sum() / (len(s) + Y[300 + i].sum()) for i, s in enumerate(sets)]
    assert np.mean(set_f1) >= right.mean() - 0.02  # a second category only when it pays
    assert np.mean([len(s) for s in sets]) < 1.5
    confidence = clf.confidence(proba)
    assert abs(confidence.mean() - right.mean()) < 0.08  # calibrated on average
    assert right[confidence >= np.median(confidence)].mean() > right.mean()  # and ordered
    assert clf.oof_metrics_["ece"] < 0.1


def test_calibrations_fitted_on_one_outcome_leave_the_scores_alone():
    """Day one's first labels can all be right (or all fall in one column): nothing to fit,
    instead of a solver error that stopped `hybrid bootstrap`."""
    proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4]])
    assert confidence_calibrator(proba, np.array([[1, 0], [1, 0], [1, 0]])) == (1.0, 0.0, 0.0)
    assert calibrator(np.log(proba), np.ones((3, 2), dtype=int)) == (1.0, 0.0)


def rare_word_articles(rng, n, k=4):
    """Single-label articles as a real site's look to TF-IDF: a few topic words (often another
    category's), many rare words, and titles of mostly rare words."""
    truth = rng.integers(0, k, n)
    X = []
    for c in truth:
        topic = [f"t{c if rng.random() < 0.45 else rng.integers(0, k)}_{rng.integers(0, 20)}"
                 for _ in range(4)]
        head = [f"h{rng.integers(0, 1500)}" for _ in range(3)] + topic[:1]
        X.append(Features(embedding=rng.normal(size=8).astype(np.float32),
                          words=topic + [f"n{rng.integers(0, 4000)}" for _ in range(20)],
                          head_words=head, candidates=[], title=" ".join(head), lexical="x y"))
    return X, np.eye(k, dtype=int)[truth]


def test_the_confidence_is_calibrated_where_held_out_rows_carry_unseen_terms():
    """An inner fold's held-out rows carry terms its model never saw (the vectorizers saw
    every row), which flattens their scores; calibrated on those, the confidence of the final
    model was 0.05 above its accuracy here (0.04-0.08 on the dev sets); now within 0.01."""
    gaps = []
    for seed in range(6):
        X, Y = rare_word_articles(np.random.default_rng(seed), 1000)
        clf = CategoryClassifier(["a", "b", "c", "d"]).fit(X[:600], Y[:600])
        proba = clf.predict_proba(X[600:])
        right = Y[600:][np.arange(400), proba.argmax(axis=1)]
        gaps.append(clf.confidence(proba).mean() - right.mean())
    assert abs(np.mean(gaps)) < 0.025


def test_unseen_rows_are_what_vectorizers_fitted_on_the_seen_rows_alone_give():
    """(Without idf, the one thing left as it was fitted on every row.)"""
    docs = ["a b c", "a b d", "a e", "b c f g", "c d h e", "a a b x y", "g g f"]
    seen, held = docs[:4], docs[4:]

    def vectorizers():
        return [TfidfVectorizer(min_df=2, use_idf=False, token_pattern=r"\S+"),
                TfidfVectorizer(min_df=1, use_idf=False, analyzer="char", ngram_range=(2, 2))]

    on_all = [v.fit(docs) for v in vectorizers()]
    on_seen = [v.fit(seen) for v in vectorizers()]
    width = len(on_all[0].vocabulary_)
    got = unseen_rows(sparse.hstack([v.transform(held) for v in on_all]).tocsr(),
                      sparse.hstack([v.transform(seen) for v in on_all]).tocsr(),
                      [(0, 2), (width, 1)]).toarray()
    for part, (every, fitted) in enumerate(zip(on_all, on_seen, strict=True)):
        expected = fitted.transform(held).toarray()
        for term, column in every.vocabulary_.items():
            kept = fitted.vocabulary_.get(term)
            want = expected[:, kept] if kept is not None else 0.0
            assert np.allclose(got[:, part * width + column], want)


def test_char_ngram_counts_are_sklearns_char_counts():
    """The numpy n-gram ids give scikit-learn's `analyzer="char"` counts, with the same
    n-grams kept (columns in another order)."""
    from sklearn.feature_extraction.text import CountVectorizer

    from hybrid.learn.char_ngrams import CharNgramCounts

    rng = np.random.default_rng(3)
    alphabet = np.array([*"abc  ", *(chr(0x4E00 + i) for i in range(8))])
    texts = ["".join(rng.choice(alphabet, rng.integers(0, 60))) for _ in range(40)]
    ours = CharNgramCounts(min_df=2, max_features=None)
    once = ours.fit_transform(texts)
    theirs = CountVectorizer(analyzer="char", ngram_range=(2, 3), min_df=2, lowercase=False)
    reference = theirs.fit_transform(texts)

    def ngram(n_id: int) -> str:  # an n-gram id's characters: 21 bits each, code point + 1
        chars = []
        while n_id:
            chars.append(chr((n_id & (2**21 - 1)) - 1))
            n_id >>= 21
        return "".join(reversed(chars))

    columns = [theirs.vocabulary_[ngram(int(i))] for i in ours.vocabulary_ids_]
    assert once.shape == reference.shape and (once != reference[:, columns]).nnz == 0


def test_char_ngram_fit_transform_reads_each_text_once(monkeypatch):
    """Training's vectorizing runs on one core, and finding every text's n-grams twice (fit,
    then transform) was half of it: `fit_transform` finds them once and gives the same."""
    from hybrid.learn import char_ngrams

    rng = np.random.default_rng(4)
    alphabet = np.array([*"ab ", *(chr(0x4E00 + i) for i in range(8))])
    texts = ["".join(rng.choice(alphabet, rng.integers(0, 80))) for _ in range(50)]
    twice = char_ngrams.CharNgramCounts(min_df=2, max_features=30)
    expected = twice.fit(texts).transform(texts)
    read, ngram_ids = [], char_ngrams.ngram_ids
    monkeypatch.setattr(char_ngrams, "ngram_ids",
                        lambda text, orders: read.append(text) or ngram_ids(text, orders))
    once = char_ngrams.CharNgramCounts(min_df=2, max_features=30)
    got = once.fit_transform(texts)
    assert len(read) == len(texts)
    np.testing.assert_array_equal(once.vocabulary_ids_, twice.vocabulary_ids_)
    assert got.dtype == expected.dtype and (got != expected).nnz == 0


def test_a_blocks_inner_rows_are_the_rows_of_the_whole_block():
    """The inner folds' rows are stacked from the parts' rows (the whole stacked block is no
    longer kept through the folds): the very matrix the whole block's rows were."""
    from hybrid.learn.classifier import _stacked

    X, _ = long_multi_label_posts(120)
    clf = CategoryClassifier(["a", "b", "c"])
    clf.transformers_ = clf._transformers(len(X))
    parts = clf._parts(X, clf.transformers_, fit=True)
    rows = np.sort(np.random.default_rng(5).choice(len(X), 70, replace=False))
    whole, inner = _stacked(parts, ["lexical_title"]), _stacked(parts, ["lexical_title"], rows)
    expected, got = whole["lexical_title"][rows], inner["lexical_title"]
    assert got.dtype == expected.dtype == np.float32
    for field in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))


def test_sparse_one_vs_rest_fits_stop_at_the_duals_looser_tolerance():
    """The dual's tol bounds the largest gradient entry: at liblinear's 0.1, training on
    5,500 long posts spent 8-16 passes a category, most of the classifier's time. The looser
    stop takes fewer passes, and its logits and the categories they give (> 0) stay those of
    a tight fit."""
    matrix, Y = two_topic_texts()

    def fitted(tol: float | None) -> object:
        model = linear.linear_model(False, 10.0)
        if tol is not None:
            model.set_params(estimator__tol=tol)
        return model.fit(matrix, Y)

    ours, liblinears, tight = fitted(None), fitted(0.1), fitted(1e-4)
    passes = [sum(int(e.n_iter_[0]) for e in m.estimators_) for m in (ours, liblinears)]
    assert passes[0] < passes[1]
    scores, best = (linear.logits(m, matrix) for m in (ours, tight))
    assert np.abs(scores - best).max() < 0.15
    assert ((scores > 0) == (best > 0)).all()


def test_inner_fold_fits_stop_sooner_than_the_final_ones():
    """The inner folds' scores only set the fusion weights, thresholds and calibration: on
    5,500 long posts their sparse fits took 10 passes a category at the final fits' tol, 5
    at theirs, 37% of the inner folds' CPU. Their logits stay near a final fit's, and give
    the same categories (> 0)."""
    matrix, Y = two_topic_texts()
    final, inner = (linear.fit(matrix, Y, False, 10.0, inner=inner) for inner in (False, True))
    passes = [sum(int(e.n_iter_[0]) for e in m.estimators_) for m in (inner, final)]
    assert passes[0] < passes[1]
    scores, best = (linear.logits(m, matrix) for m in (inner, final))
    assert np.abs(scores - best).max() < 0.3
    assert ((scores > 0) == (best > 0)).all()


def two_topic_texts() -> tuple[sparse.csr_matrix, np.ndarray]:
    """400 TF-IDF rows of one or two of 4 topics each, and their 0/1 labels."""
    rng = np.random.default_rng(3)
    topics = rng.integers(0, 4, size=(400, 2))
    texts = [" ".join([*(f"t{k}_{rng.integers(0, 12)}" for k in set(t) for _ in range(6)),
                       *(f"w{rng.integers(0, 400)}" for _ in range(60))]) for t in topics]
    matrix = TfidfVectorizer(token_pattern=r"\S+", sublinear_tf=True).fit_transform(texts)
    Y = np.zeros((400, 4), dtype=int)
    for i, t in enumerate(topics):
        Y[i, list(t)] = 1
    return matrix, Y
