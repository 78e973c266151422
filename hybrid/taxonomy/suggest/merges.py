"""Categories the model cannot tell apart: cleanlab's `find_overlapping_classes` on the
out-of-fold probabilities the classifier kept from its training (`oof_proba_`).

A pair is proposed for merging when the overlap is a large share of the smaller category
(`MERGE_SHARE`); each category is in one merge at most, the most overlapping first. The
larger category keeps its name; the smaller one becomes its alias. A category with fewer
out-of-fold articles than `min_articles` is left out: cleanlab's per-class threshold is the
mean probability over its few articles, so nearly every article passes it (one-article
categories came out "overlapping" with 56 articles), and it is a dead category's case anyway.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybrid.errors import UsageError
from hybrid.learn.model import HybridModel
from hybrid.taxonomy.suggest.proposal import Merge

MERGE_SHARE = 0.3
EXAMPLES = 5
SHOWN_PAIRS = 10


@dataclass
class Overlaps:
    merges: list[Merge] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)  # the most confused, merged or not
    note: str | None = None  # why there is nothing to say, when there is not


def find_merges(model: HybridModel, min_articles: int = 1) -> Overlaps:
    clf = model.classifier
    if getattr(clf, "oof_proba_", None) is None:
        return Overlaps(note="the model keeps no out-of-fold probabilities (zero-shot, or "
                             "trained before they were kept): retrain it for merges")
    try:
        from cleanlab.dataset import find_overlapping_classes
    except ImportError as exc:
        raise UsageError(f"merges need cleanlab: pip install 'hybrid[report]' ({exc})") from exc
    names = model.taxonomy.names
    labelled = [i for i, cats in enumerate(model.train_categories) if cats]
    rows = [labelled[r] for r in clf.oof_rows_]
    given = [model.train_categories[i] for i in rows]
    present = sorted({names.index(c) for cats in given for c in cats})
    if len(present) < 2:
        return Overlaps(note="fewer than two categories in the out-of-fold record")
    column = {names[j]: k for k, j in enumerate(present)}
    proba = np.clip(clf.oof_proba_[:, present].astype(float), 1e-6, 1.0)
    # cleanlab compares one given label with the rest: an article with several labels
    # counts once per label, each time against its probabilities as a distribution in which
    # its other given labels have no part (they are right too, not confused with this one)
    pairs = [(k, column[c]) for k, cats in enumerate(given) for c in cats]
    spread = proba[[k for k, _ in pairs]]
    for r, (k, label) in enumerate(pairs):
        spread[r, [column[c] for c in given[k] if column[c] != label]] = 1e-6
    table = find_overlapping_classes(
        labels=np.array([label for _, label in pairs]),
        pred_probs=spread / spread.sum(axis=1, keepdims=True),
        class_names=[names[j] for j in present])
    support = Counter(c for cats in given for c in cats)
    top = [names[present[j]] for j in proba.argmax(axis=1)]
    out, used = Overlaps(), set()
    for _, row in table.head(SHOWN_PAIRS * 3).iterrows():
        a, b = row["Class Name A"], row["Class Name B"]
        overlap = int(row["Num Overlapping Examples"])
        share = overlap / max(min(support[a], support[b]), 1)
        if overlap <= 0 or min(support[a], support[b]) < min_articles:
            continue
        if len(out.pairs) < SHOWN_PAIRS:
            out.pairs.append({"a": a, "b": b, "overlapping": overlap, "share_of_smaller":
                              round(share, 3), "joint": round(float(row["Joint Probability"]), 4)})
        if share < MERGE_SHARE or {a, b} & used:
            continue
        used |= {a, b}
        into, merged = (a, b) if support[a] >= support[b] else (b, a)
        confused = [k for k, cats in enumerate(given)
                    if (a in cats and top[k] == b and b not in cats)
                    or (b in cats and top[k] == a and a not in cats)]
        examples = [{"id": model.train_ids[rows[k]], "title": model.train_titles[rows[k]],
                     "label": ", ".join(given[k]), "model": top[k]} for k in confused]
        out.merges.append(Merge(into, merged, overlap, share, float(row["Joint Probability"]),
                                examples[:EXAMPLES], [e["id"] for e in examples]))
    return out
