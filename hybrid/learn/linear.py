"""The logistic regressions the category model fits per feature block: which solver, and
where the fits run when there are several (inner folds, blocks, classes), and the release
of training's worker processes once a stage is done with them.

The inner folds run in worker processes. Threads would share one copy of the matrices
(liblinear frees the GIL), but liblinear's random generator, which orders the dual's visits,
is one global: fits in concurrent threads race on it, and their coefficients vary from run
to run (by ~1e-3). The final one-vs-rest fits split their classes across threads all the
same: worker processes would each hold the full matrix and liblinear's copy of it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import numpy as np
from joblib import parallel_config
from joblib.externals.loky import get_reusable_executor
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from hybrid.learn.label_sets import unseen_rows

_DUAL_TOL = 0.3
_INNER_DUAL_TOL = 1.0


def linear_model(single_label: bool, C: float, n_jobs: int = 1, sparse_input: bool = True,
                 inner: bool = False) -> BaseEstimator:
    """Softmax when every training article has one label (sharper, better calibrated);
    one-vs-rest when articles carry several, its classes split across `n_jobs` workers."""
    if single_label:
        # newton-cg: L-BFGS spends its time on bookkeeping with this many parameters. tol 1e-3
        # for `inner` folds (their scores only set weights): a quarter of the time with 96
        # categories; 1e-3 under-fit the smallest categories of the model that predicts.
        return LogisticRegression(C=C, class_weight="balanced", solver="newton-cg",
                                  max_iter=3000, tol=1e-3 if inner else 1e-4)
    # liblinear: many small binary problems, where lbfgs crawls; in the dual for sparse
    # features (more than articles), in the primal for the dense embedding (a third sooner).
    # Primal tol 0.1, liblinear's own (scikit-learn's is 1,000x stricter): the same top-1 at
    # a third of the time with 96 categories. The dual's tol bounds the largest gradient
    # entry, not a ratio: on 5,500 long posts (57 categories, the stage's cost) 0.3 takes a
    # median 11 passes a category instead of 13 (15% less CPU), its logits within 0.15 of
    # 0.1's and the same top category for 99.8%. The `inner` folds' scores only set weights,
    # thresholds and calibration: at 1.0 a fold of 2,000 of those posts takes 5 passes a
    # category, not 10 (16 → 10 CPU s), its logits within 0.13 of 0.3's at p99, the same top
    # category for all. Seeded: the dual visits articles in a random order.
    dual_tol = _INNER_DUAL_TOL if inner else _DUAL_TOL
    return OneVsRestClassifier(LogisticRegression(C=C, class_weight="balanced",
                                                  solver="liblinear", dual=sparse_input,
                                                  tol=dual_tol if sparse_input else 0.1,
                                                  random_state=0), n_jobs=n_jobs)


def workers(single_label: bool) -> AbstractContextManager:
    """Where the final fits' `Parallel` calls inside the block run their jobs: threads for
    one-vs-rest (liblinear), joblib's default worker processes for softmax."""
    return nullcontext() if single_label else parallel_config(backend="threading")


def fit(matrix: object, y: np.ndarray, single_label: bool, C: float, n_jobs: int = 1,
        inner: bool = False) -> BaseEstimator:
    return linear_model(single_label, C, n_jobs, sparse.issparse(matrix), inner).fit(matrix, y)


def fold_logits(matrix: object, train: np.ndarray, test: np.ndarray, y: np.ndarray,
                single_label: bool, C: float, parts: list[tuple[int, int]] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A fold model's logits on the held-out rows, as they are and (`parts`: the block's
    TF-IDF parts) shaped like a new article's."""
    model = fit(matrix[train], y, single_label, C, inner=True)
    rows = matrix[test]
    new = rows if parts is None else unseen_rows(rows, matrix[train], parts)
    return logits(model, rows), logits(model, new)


def logits(model: BaseEstimator, X: object) -> np.ndarray:
    """Per-class log-odds; for softmax models, log-probabilities (comparable across blocks)."""
    if isinstance(model, LogisticRegression):
        return model.predict_log_proba(X)
    scores = model.decision_function(X)
    return scores.reshape(scores.shape[0], -1)


def release_workers(workers: int) -> None:
    """joblib's worker processes outlive the call that started them, and so does what they
    loaded: the embedder's weights (~300 MB each for USE), a fold's matrices. The next step
    of training needs none of it, and the 10,000-article run peaked while they idled."""
    if workers > 1:
        get_reusable_executor().shutdown(wait=True)
