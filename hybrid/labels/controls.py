"""Negative controls for the teacher check: questions whose answer is known by construction.

Without gold labels, agreement with the zero-shot model cannot tell a weak teacher whose
mistakes are the model's plausible neighbours from a good one (`teacher_check`). A control
breaks that symmetry. Each of the teacher's first labelled articles is asked again, with a
list of only the categories the zero-shot model finds least likely for it (a third of the
list, at most `OFFERED`), and "none" allowed, as every request allows it. The article's
category is not on that list, by construction (on the development sets it is for 2% of csl's
articles, 1% of oec2003's, 15% of jiegec's with its 13 categories), so a teacher that knows
what the article is about answers none, and one that guesses picks something.

A teacher that knows an article's category when it is offered also sees that it is not
offered, so the share of controls it answers with none bounds its accuracy from above (a
Wilson interval). `COUNT` controls, for the first labels checked: none answered of 20 bounds
the accuracy at 0.161, one at 0.236. On csl, where agreement cannot tell, the
Qwen2.5-Coder-0.5B picked from each of the first lists it was given; the oracle (which
answers from the list it is offered) answered none to every list perfect, and to 75% of them
wrong on 20% of its articles. The bound assumes a careful teacher: one that knows the answer
yet always picks the nearest category on offer would look as weak as a guesser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from hybrid.evaluation.metrics import wilson
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText
from hybrid.labels.teacher import LLMTeacher
from hybrid.llm.check.measure import Interval
from hybrid.llm.cost import Estimate
from hybrid.taxonomy import Taxonomy

OFFERED = 5  # categories a control offers at most
COUNT = 20  # controls asked at most
LEVEL = 0.95


def offered(taxonomy: Taxonomy) -> int:
    """How many categories a control offers: none below 2 (a taxonomy under 6 categories
    has no list that leaves the likely ones out)."""
    m = min(OFFERED, len(taxonomy) // 3)
    return m if m >= 2 else 0


def control_lists(proba: np.ndarray, taxonomy: Taxonomy) -> list[Taxonomy]:
    """For each row of the zero-shot model's probabilities, the list of its least likely
    categories, in the taxonomy's order (parents dropped: a list of a few names)."""
    m = offered(taxonomy)
    if not m:
        return []
    return [Taxonomy([replace(taxonomy.categories[j], parent=None)
                      for j in sorted(np.argsort(row, kind="stable")[:m])], source="control")
            for row in proba]


def estimate(teacher: LLMTeacher, texts: Sequence[CleanText], taxonomy: Taxonomy
             ) -> Estimate | None:
    """What the controls of the articles of `texts` (the first `COUNT`) will cost at most,
    before any call; None when the taxonomy is too short for controls."""
    m = offered(taxonomy)
    if not m:
        return None
    longest = sorted(taxonomy.categories, key=lambda c: -len(c.name + c.description))[:m]
    return teacher.estimate(texts[:COUNT], Taxonomy([replace(c, parent=None)
                                                     for c in longest], source="control"))


def ask(teacher: LLMTeacher, articles: Sequence[Article], texts: Sequence[CleanText],
        proba: np.ndarray, taxonomy: Taxonomy) -> Interval | None:
    """The share of the controls of `articles` (the first `COUNT`; `proba`: the zero-shot
    model's for them) the teacher answered with none, and its interval; None without a
    list or an answer. Asking stops when the teacher does (budget, unavailable)."""
    lists = control_lists(proba[:COUNT], taxonomy)
    answered = none = 0
    for article, text, offered_list in zip(articles, texts, lists, strict=False):
        got = teacher.control(article, text, offered_list)
        if got in ("over_budget", "unavailable"):
            break
        if isinstance(got, list):
            answered += 1
            none += not got
    if not answered:
        return None
    return Interval(none / answered, *wilson(none, answered, LEVEL))
