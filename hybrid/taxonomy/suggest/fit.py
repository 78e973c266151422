"""Which articles the category list fits badly: where new categories would come from.

Two kinds, both measured against the site's own habits rather than fixed rules:
- an article without a label from people whose calibrated confidence is low: the model
  had to put it somewhere, and is unsure where;
- an article with one label, of a category the site gives together with another (a field
  beside its discipline, say), when the model finds no other category likely for it: its
  second label is the one the list lacks. "Together" means for a tenth of its articles, not
  most: when a field's disciplines are missing from the list, most of its articles carry it
  alone, and the more of them are missing the fewer pairings are left to show it.

Whether such an article is also far from every category's prototype is decided later,
against the new category it would join (`clusters.keep_members`).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from hybrid.taxonomy.suggest.corpus import Corpus

# a category "comes with another" when this share of its articles carry a second label
COMPANION_SHARE = 0.1
# another category is likely for an article when the model gives it this probability
LIKELY = 0.5


def companioned(corpus: Corpus) -> set[str]:
    """Categories at least `COMPANION_SHARE` of whose labelled articles carry another label
    too."""
    carried = Counter(name for labels in corpus.labels for name in labels)
    together = Counter(name for labels in corpus.labels if len(labels) > 1 for name in labels)
    return {name for name, n in carried.items() if together[name] >= COMPANION_SHARE * n}


def lacking(corpus: Corpus) -> list[int]:
    """Indices of the articles that lack a label: none from people, or one of a category the
    site gives together with another."""
    usually_paired = companioned(corpus)
    return [i for i, labels in enumerate(corpus.labels)
            if not labels or (len(labels) == 1 and labels[0] in usually_paired)]


def badly_fitted(corpus: Corpus, names: list[str], confidence_below: float) -> np.ndarray:
    """Indices (into the corpus) of the articles the list fits badly, in corpus order: of
    those that lack a label, the ones the model is unsure of, or finds no other category
    likely for."""
    column = {name: j for j, name in enumerate(names)}
    out = []
    for i in lacking(corpus):
        labels = corpus.labels[i]
        if not labels:
            if corpus.confidence[i] < confidence_below:
                out.append(i)
        else:
            others = np.delete(corpus.proba[i], column[labels[0]])
            if not len(others) or others.max() < LIKELY:
                out.append(i)
    return np.array(out, dtype=int)
