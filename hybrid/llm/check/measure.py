"""From the LLM's answers on the least confident articles to a recommendation.

Only the articles the fallback would send are asked: the least confident, out of fold. On
exactly those, the LLM's top-1 accuracy and the classifier's (Wilson intervals), and their
paired difference (percentile bootstrap). For each confidence threshold that routes a share
of the set to the LLM, and each k of "apply the answer only when its first category is in
the classifier's top k" (any: always), the top-1 accuracy over the whole set, and its gain
over the classifier alone with a paired bootstrap interval. An answer that fails, or names no
authorized category, leaves the classifier's answer, as the fallback does.

The recommendation is the (threshold, k) whose gain has the highest lower bound, among those
whose lower bound is above zero (on ties the cheaper threshold, then the stricter k); with
none, "do not use".
Choosing the highest lower bound, not the highest gain, prefers a gain that is sure to a
larger one that may be luck.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hybrid.evaluation.metrics import mean_interval, wilson

LEVEL = 0.95
RESAMPLES = 2000
INTERVALS = (f"Wilson {LEVEL:.0%} intervals for accuracies; paired percentile bootstrap "
             f"({RESAMPLES} resamples) for differences and gains")
SHARES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
TOP_K = (2, 3, 5, None)  # None: an answer is applied whatever the classifier ranked first
EVERY_ARTICLE = 1.01  # a threshold above any confidence


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def points(self) -> str:
        """As percentage points, signed: "+6.5 (+4.1 to +8.8)"."""
        return (f"{100 * self.value:+.1f} ({100 * self.low:+.1f} to "
                f"{100 * self.high:+.1f})")

    def share(self) -> str:
        return f"{self.value:.3f} ({self.low:.3f}-{self.high:.3f})"


@dataclass
class Route:
    """Routing the articles under `threshold` to the LLM, applying an answer only when its
    first category is in the classifier's `top_k` (None: any)."""
    threshold: float
    routed: int
    share: float
    top_k: int | None
    top1: float  # over the whole set
    gain: Interval  # over the classifier alone, whole set


@dataclass
class Recommendation:
    use: bool
    threshold: float | None = None
    top_k: int | None = None
    gain: Interval | None = None
    reason: str = ""


@dataclass
class Measured:
    answered: int  # articles with an answer (one without an authorized category counts)
    llm_accuracy: Interval
    classifier_accuracy: Interval  # on the same articles
    difference: Interval  # LLM minus classifier, paired
    classifier_top1: float  # over the whole set
    routes: list[Route] = field(default_factory=list)
    recommendation: Recommendation = field(default_factory=lambda: Recommendation(False))


def _thresholds(confidence: np.ndarray, asked: int) -> list[tuple[float, int]]:
    """(threshold, articles under it) for each share in `SHARES` that the `asked` least
    confident articles cover; ties at a cut route fewer, never an article not asked."""
    ordered = np.sort(confidence, kind="stable")
    n = len(ordered)
    out: dict[float, int] = {}
    for share in SHARES:
        r = min(max(1, round(share * n)), asked)
        threshold = float(ordered[r]) if r < n else EVERY_ARTICLE
        routed = int((confidence < threshold).sum())
        if routed:
            out[threshold] = routed
    return sorted(out.items())


def measure(confidence: Sequence[float], classifier_right: Sequence[bool],
            asked: Sequence[int], llm_first: Sequence[str | None],
            ranked: Sequence[Sequence[str]], gold: Sequence[set[str]],
            answered: Sequence[bool]) -> Measured:
    """`confidence`, `classifier_right`: the whole set, out of fold. For each article asked
    (`asked`: indices, least confident first): the first category of the LLM's validated
    answer (None: none), the classifier's categories best first, the gold labels, and
    whether the LLM answered at all."""
    confidence = np.asarray(confidence, float)
    classifier_right = np.asarray(classifier_right, bool)
    n, asked = len(confidence), np.asarray(asked, int)
    llm_right = np.array([f is not None and f in g for f, g in zip(llm_first, gold,
                                                                    strict=True)])
    clf_right = classifier_right[asked]
    got = np.asarray(answered, bool)
    k_answered = int(got.sum())
    paired = (llm_right.astype(float) - clf_right)[got]
    low, high = mean_interval(paired[:, None], LEVEL, RESAMPLES) if k_answered else ([0], [0])
    out = Measured(
        k_answered,
        Interval(float(llm_right[got].mean()) if k_answered else 0.0,
                 *wilson(int(llm_right[got].sum()), k_answered, LEVEL)),
        Interval(float(clf_right[got].mean()) if k_answered else 0.0,
                 *wilson(int(clf_right[got].sum()), k_answered, LEVEL)),
        Interval(float(paired.mean()) if k_answered else 0.0, float(low[0]), float(high[0])),
        float(classifier_right.mean()))
    candidates = [(t, routed, k) for t, routed in _thresholds(confidence, len(asked))
                  for k in TOP_K]
    if not candidates:
        out.recommendation.reason = "no article to route"
        return out
    # per article asked (rows) and candidate (columns): what routing changes in top-1
    columns = []
    for t, _, k in candidates:
        inside = np.array([f is not None and (k is None or f in r[:k])
                           for f, r in zip(llm_first, ranked, strict=True)])
        columns.append((confidence[asked] < t) & inside)
    applied = np.column_stack(columns)
    change = applied * (llm_right.astype(float) - clf_right)[:, None] * (len(asked) / n)
    lows, highs = mean_interval(change, LEVEL, RESAMPLES)
    gains = change.mean(axis=0)
    base = out.classifier_top1
    for c, (t, routed, k) in enumerate(candidates):
        out.routes.append(Route(t, routed, routed / n, k, base + float(gains[c]),
                                Interval(float(gains[c]), float(lows[c]), float(highs[c]))))
    out.recommendation = recommend(out.routes)
    return out


def recommend(routes: Sequence[Route]) -> Recommendation:
    helping = [r for r in routes if r.gain.low > 0]
    if not helping:
        best = max(routes, key=lambda r: (r.gain.value, -r.threshold))
        return Recommendation(False, reason=(
            f"routing never helped for sure: the best was {best.gain.points()} points of "
            f"top-1 (routing {best.routed} articles, {_k(best.top_k)}), and its interval "
            "reaches zero or below"))
    # ties: the cheaper threshold, then the stricter k
    best = max(helping, key=lambda r: (r.gain.low, -r.threshold, -(r.top_k or len(TOP_K) * 99)))
    return Recommendation(True, best.threshold, best.top_k, best.gain, (
        f"routing the articles under confidence {best.threshold:.3f} ({best.share:.0%} of "
        f"the set), {_k(best.top_k)}, gains {best.gain.points()} points of top-1"))


def _k(top_k: int | None) -> str:
    return ("applying every answer" if top_k is None else
            f"applying an answer only inside the classifier's top {top_k}")
