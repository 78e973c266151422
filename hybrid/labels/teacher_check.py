"""Is the teacher better than the zero-shot model it is paid to replace? Estimated after the
first round, before the rest of the budget is spent (`hybrid bootstrap`).

Without gold labels, from agreement against chance: each of the teacher's answers is taken to
be right with probability `a`, and then the zero-shot model gave its categories the
probability it did (their summed softmax mass: a site may give an article several), or else
drawn by chance from the teacher's own habits (how often it names each category, whatever the
article). `a` is the maximum-likelihood value, with a percentile bootstrap interval over the
articles. A teacher that answers the same few categories for everything, or at random,
explains nothing the zero-shot model sees, and gets an `a` near 0; one that names what the
articles are about gets a high one. The zero-shot model's own estimate is the mean of its top
probability over the collection: the accuracy it expects of itself (uncalibrated: nothing
labelled exists yet to calibrate it on).

With an audit (20 of the teacher's articles that a person labelled blind, through a review
file), both are measured for real on those articles, with Wilson intervals.

Without gold labels the teacher is stopped only when its interval lies wholly below the
zero-shot model's estimate: the estimate is crude, and it must not stop a good teacher by
the luck of a few articles. When the interval holds the zero-shot model's estimate, it tells
nothing either way, and the text says so and points to the audit. It cannot tell more: where
the teacher's mistakes are the zero-shot model's own plausible neighbours, agreement looks
the same for a teacher worse than the model and one better (on csl, 74 categories, the
Qwen2.5-Coder-0.5B agrees with the zero-shot model's first category on 33% of its articles,
a perfect teacher on 45%: 40 labels cannot tell those apart). Negative controls break that
symmetry (`hybrid.labels.controls`): the share of lists of unlikely categories the teacher
answers with none bounds its accuracy from above, and a bound wholly below the zero-shot
model's estimate stops it too (on csl it stops the 0.5B, and neither a perfect teacher nor
one wrong on 20%).

An audit measures both on the same articles, so its point estimates decide: a teacher right
less often than the zero-shot model on the person's labels is worse, and is not paid for
(on 20 articles that stops the 0.5B 70-99% of the time on the development sets, and a
teacher with 20% wrong answers at most 2%).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hybrid.evaluation.metrics import mean_interval, wilson
from hybrid.llm.check.measure import Interval

LEVEL = 0.95
RESAMPLES = 1000
_GRID = np.linspace(0.0, 1.0, 201)


@dataclass
class TeacherEstimate:
    how: str  # "agreement" (no gold) or "audit"
    articles: int  # the teacher's labels it rests on
    teacher: Interval  # the teacher's top-1 accuracy
    zero_shot: Interval  # the zero-shot model's (from its confidence, or audited)
    # without gold labels: the share of negative controls answered with none, an upper bound
    # of the teacher's accuracy (`hybrid.labels.controls`); None when none were asked
    controls: Interval | None = None

    @property
    def below(self) -> bool:
        """The teacher is worse than the zero-shot model: on the audited articles, or beyond
        its interval without gold labels, or beyond its controls' bound."""
        if self.how == "audit":
            return self.teacher.value < self.zero_shot.value
        return self.upper.high < self.zero_shot.value

    @property
    def upper(self) -> Interval:
        """The tighter of the two estimates without gold labels: agreement, or the controls'
        bound when its interval ends lower."""
        if self.controls is not None and self.controls.high < self.teacher.high:
            return self.controls
        return self.teacher

    def accuracy(self) -> str:
        """The teacher's accuracy as the verdict rests on it: "at most" from its controls."""
        upper = self.upper
        return f"at most {upper.share()}" if upper is self.controls else upper.share()

    @property
    def undecided(self) -> bool:
        """Without gold labels, an interval that holds the zero-shot model's estimate."""
        return (self.how == "agreement" and not self.below
                and self.teacher.low <= self.zero_shot.value <= self.teacher.high)

    def text(self) -> str:
        where = ("from its agreement with the zero-shot model beyond chance, no gold label"
                 if self.how == "agreement" else "from a person's audit")
        verdict = ("the teacher is worse than the zero-shot model" if self.below else
                   "the estimate cannot tell whether the teacher is better than the zero-shot "
                   "model; --audit FILE measures both on 20 articles a person labels"
                   if self.undecided else "the teacher is not worse than the zero-shot model")
        controls = ("" if self.controls is None else
                    f", at most {self.controls.share()} (the share of its negative controls "
                    "answered with none)")
        return (f"teacher check on {self.articles} of its labels ({where}): teacher accuracy "
                f"{self.teacher.share()}{controls}, zero-shot model {self.zero_shot.share()}: "
                f"{verdict}")


def _mle(q: np.ndarray, chance: np.ndarray) -> float:
    """argmax over a of sum(log(a q + (1 - a) chance)): concave in a, so a grid finds it."""
    likelihood = np.log(np.maximum(np.outer(_GRID, q) + np.outer(1 - _GRID, chance), 1e-12))
    return float(_GRID[likelihood.sum(axis=1).argmax()])


def _accuracy(proba: np.ndarray, answers: Sequence[Sequence[int]]) -> float:
    counts = np.ones(proba.shape[1] + 1)  # add-one; the last: "no authorized category"
    for cats in answers:
        for k in cats or [proba.shape[1]]:
            counts[k] += 1
    habit = counts / counts.sum()
    q = np.array([proba[i, list(cats)].sum() if cats else 0.0
                  for i, cats in enumerate(answers)])
    chance = np.array([habit[list(cats) or [-1]].sum() for cats in answers])
    return _mle(q, chance)


def by_agreement(proba: np.ndarray, answers: Sequence[Sequence[int]],
                 zero_shot_proba: np.ndarray, seed: int = 0,
                 controls: Interval | None = None) -> TeacherEstimate:
    """`proba`: the zero-shot model's probabilities for the articles the teacher labelled,
    `answers` the teacher's categories for them (column indices, empty: none authorized);
    `zero_shot_proba`: the zero-shot model's for the whole collection; `controls`: the share
    of its negative controls answered with none."""
    rng = np.random.default_rng(seed)
    n = len(answers)
    draws = [_accuracy(proba[rows], [answers[i] for i in rows])
             for rows in (rng.integers(0, n, n) for _ in range(RESAMPLES))]
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    top = zero_shot_proba.max(axis=1)
    top_low, top_high = mean_interval(top[:, None], LEVEL, RESAMPLES, seed)
    return TeacherEstimate("agreement", n, Interval(_accuracy(proba, answers), float(low),
                                                    float(high)),
                           Interval(float(top.mean()), float(top_low[0]), float(top_high[0])),
                           controls)


def by_audit(teacher_right: Sequence[bool], zero_shot_right: Sequence[bool]
             ) -> TeacherEstimate:
    """From articles a person labelled: whether the teacher's first category, and the
    zero-shot model's, is one of the person's."""
    n = len(teacher_right)
    t, z = int(np.sum(teacher_right)), int(np.sum(zero_shot_right))
    return TeacherEstimate("audit", n, Interval(t / max(n, 1), *wilson(t, n, LEVEL)),
                           Interval(z / max(n, 1), *wilson(z, n, LEVEL)))
