"""Join the groups that are one subject: people gave their articles the same tags.

HDBSCAN's leaf clusters often cut one subject into several groups (a horticulture of 60
papers into three of 20, 15 and 11), each too small a part of it to be the category a
person would create. Which groups belong together is not told by how close their
embeddings' centres are (on the hide-and-recover bench: 0.36-0.82 for two groups of one
hidden category, up to 0.78 for two of different ones), nor by the categories the model
predicts for them (how alike those are depends on the site: two unrelated groups of a
blog whose list has one large category look as alike as two halves of a subject of a
paper collection), nor by the words of their text. The tags people gave them do: their
authors use the subject's terms in both halves.

So the groups join, most alike first, while the cosine between their class-based TF-IDF
rows over people's tags is at least `JOIN_SIMILARITY`. The existing categories' other
articles are classes too, so a tag the whole site uses weighs little. The model's tags are
no such evidence: they come from the articles' words and their neighbours' tags, and with
them in place of the authors' on the bench, groups of different subjects were joined (97
pairs of groups each mostly one category ended in one group, against 17 with the
authors' tags) for one more category back instead of seven. An article without people's
tags takes no part; on a site without any, the groups stay as found.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.preprocessing import normalize

from hybrid.taxonomy.suggest.terms import class_tfidf, term_uses

# on the bench (3 sets x 5 seeds, 195 groups): at 0.07, 51 joins of two groups of one
# hidden category and none of two different ones (17 more took in a group mostly of
# none); at 0.05, 4 of different ones; at 0.1, none, but fewer categories came back whole
JOIN_SIMILARITY = 0.07


def join_groups(tags: Sequence[Sequence[str]], groups: Sequence[np.ndarray],
                context: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """`groups` (indices into `tags`: each article's tags from people) with those of one
    subject joined, largest first. `context`: further classes of the TF-IDF, never joined
    (the articles the existing categories hold)."""
    groups = [np.asarray(g, dtype=int) for g in groups]
    used = term_uses(tags)
    while len(groups) > 1 and used is not None:
        rows = normalize(class_tfidf(*used, [*groups, *context]).scores[:len(groups)])
        similar = rows @ rows.T
        np.fill_diagonal(similar, -np.inf)
        a, b = np.unravel_index(int(similar.argmax()), similar.shape)
        if similar[a, b] < JOIN_SIMILARITY:
            break
        joined = np.sort(np.concatenate([groups[a], groups[b]]))
        groups = [g for k, g in enumerate(groups) if k not in (a, b)] + [joined]
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))
