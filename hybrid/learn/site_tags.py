"""Which of the site's own frequent tags an article carries, read off its embedding: one
ridge regression per tag, all solved at once. Readers accept a site tag the article does not
spell out (读书笔记, 错误解决, `uarch-review`) when it is right; its ten nearest articles vote
for such tags, and a linear model over all the site's articles tells better which of those
votes hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import PredefinedSplit


class SiteTagModel(BaseEstimator):
    """`fit(E, tags)`: `vocabulary_` (tags with at least `min_uses` uses) and `coef_`;
    `decision_function(E)`: a score per article and vocabulary tag (about 1 for a tag the
    article carries, 0 for one it does not)."""

    def __init__(self, min_uses: int = 3, alpha: float = 10.0) -> None:
        self.min_uses = min_uses
        self.alpha = alpha

    def fit(self, E: np.ndarray, tags: Sequence[Sequence[str]]) -> SiteTagModel:
        uses = Counter(t for ts in tags for t in set(ts))
        self.vocabulary_ = sorted(t for t, n in uses.items() if n >= self.min_uses)
        self.index_ = {t: j for j, t in enumerate(self.vocabulary_)}
        self.coef_ = self._solve(E, self._targets(tags))
        return self

    def decision_function(self, E: np.ndarray) -> np.ndarray:
        return np.asarray(E, dtype=np.float32) @ self.coef_

    def out_of_fold(self, E: np.ndarray, tags: Sequence[Sequence[str]], rows: np.ndarray,
                    keys: np.ndarray, folds: int = 5) -> np.ndarray:
        """Scores of the articles `rows`, each from a model that did not see it: what the
        tag ranker learns from must be what it meets in new articles. An article's fold is
        its `keys` (`tag_ranker.article_key`) modulo `folds`, not its position: folds by
        position changed every article's scores when one was added or the order changed."""
        Y = self._targets(tags)
        out = np.zeros((len(rows), len(self.vocabulary_)), dtype=np.float32)
        position = {r: n for n, r in enumerate(rows)}
        for train, test in PredefinedSplit(np.asarray(keys) % folds).split(E):
            wanted = [t for t in test if t in position]
            if wanted:
                coef = self._solve(E[train], Y[train])
                out[[position[t] for t in wanted]] = E[wanted] @ coef
        return out

    def _targets(self, tags: Sequence[Sequence[str]]) -> np.ndarray:
        Y = np.zeros((len(tags), len(self.vocabulary_)), dtype=np.float32)
        for i, ts in enumerate(tags):
            for t in ts:
                if (j := self.index_.get(t)) is not None:
                    Y[i, j] = 1.0
        return Y

    def _solve(self, E: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """(EᵀE + αI)⁻¹ EᵀY: one d×d system for every tag at once."""
        E = np.asarray(E, dtype=np.float64)
        gram = E.T @ E + self.alpha * np.eye(E.shape[1])
        return np.linalg.solve(gram, E.T @ Y).astype(np.float32)
