"""Propose the parent a two-level list lacks: categories that sit alone where the site's
other categories sit under a parent.

A paper collection files each article under a field and a discipline (工学 and 电气工程).
When a field is missing from the list, its disciplines' articles still carry their
discipline, so the model fits them well and none of them is "badly fitted": the clusters
of `clusters.py` never see them (on the hide-and-recover bench, a hidden field such as 工学,
886 papers, was lost this way in 4 of 5 seeds). What shows the gap is the list's shape:
the site nests its categories under others, and a set of alike categories has no parent.

How the site nests is read from people's labels: a category is another's child when most
of its articles carry that other, larger one too. A category with neither parent nor child
is an orphan. A site whose articles seldom carry a category and its parent (a flat list
where a few labels happen to nest) has none. Orphans are grouped, closest first, while
every member is at least as close to the group's centre (the mean of the members'
prototypes, weighted by their articles) as the least fitting child the site has is to its
own parent's prototype: no group looser than a parent the site already has. Each group of
two or more orphans, with the articles filed under them, is a proposed parent.

A parent is named by the word its children's names share, as a list names its own: 经济学
over 理论经济学 and 应用经济学, 医学 over 口腔医学 and 基础医学/临床医学. Its articles' most
distinctive terms cannot name it: they are half the site, so no term sets them apart (on
the bench, a hidden 工学 of 886 papers came back as 研究). The word must be in at least two
of the names and a third of them; else the terms name it as any group.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from hybrid.ingest.keys import plain_tag

# a category is the child of another when this share of its articles carry the other too
NESTED_SHARE = 0.8
# a site files at two levels when this share of its labelled articles carry a category and
# its parent (as a category "comes with another" in `fit.py`). csl with a field and 14
# disciplines hidden: 0.29-0.73; swiftgg, a flat list where 19 of 564 posts carry two
# labels that happen to nest (NSHipster under Swift): 0.02, and it gets no parents
NESTED_ARTICLES = 0.1
# a parent's name is a word at least this share of its children's names contain (and two)
SHARED_NAME = 1 / 3


def nesting(labels: Sequence[Sequence[str]]) -> dict[str, str]:
    """Each child category's parent, from people's labels (`labels`: per article)."""
    carried = Counter(name for given in labels for name in given)
    together: dict[str, Counter] = {}
    for given in labels:
        for name in given:
            together.setdefault(name, Counter()).update(n for n in given if n != name)
    out = {}
    for name, with_it in together.items():
        if with_it:
            other, n = with_it.most_common(1)[0]
            if n >= NESTED_SHARE * carried[name] and carried[other] > carried[name]:
                out[name] = other
    return out


def orphan_groups(labels: Sequence[Sequence[str]], prototypes: dict[str, np.ndarray]
                  ) -> list[list[str]]:
    """Groups of two or more orphan categories (neither parent nor child) that are as close
    together as the site's loosest parent and its children (merged closest first), each
    and the groups in `prototypes`' order."""
    parents = nesting(labels)
    labelled = [set(given) for given in labels if given]
    nested = sum(any(parents.get(c) in given for c in given) for given in labelled)
    if nested < NESTED_ARTICLES * len(labelled):
        return []
    fits = [float(prototypes[c] @ prototypes[p]) for c, p in parents.items()
            if c in prototypes and p in prototypes]
    if not fits:
        return []
    loosest = min(fits)
    carried = Counter(name for given in labels for name in given)
    has_child = set(parents.values())
    order = {name: k for k, name in enumerate(prototypes)}
    groups = {k: [name] for name, k in order.items()
              if carried[name] and name not in parents and name not in has_child}

    sums = {k: carried[name] * prototypes[name] for k, (name,) in groups.items()}

    def worst(one: int, others: list[int]) -> np.ndarray:
        """For each of `others`, merged with group `one`: how close its least fitting member
        is to the merged centre (the members' prototypes weighted by their articles)."""
        centres = np.array([sums[k] for k in others]) + sums[one]
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        own = np.array([prototypes[c] for c in groups[one]]) @ centres.T
        sizes = [len(groups[k]) for k in others]
        theirs = np.einsum("ij,ij->i", np.array([prototypes[c] for k in others
                                                 for c in groups[k]]),
                           np.repeat(centres, sizes, axis=0))
        return np.minimum(own.min(axis=0),
                          np.minimum.reduceat(theirs, np.cumsum([0, *sizes[:-1]])))

    # each pair's score is kept in a heap, and only the merged group's are computed anew, at
    # once; a pair whose group was merged since is passed over when it comes up (a dict of
    # every pair rebuilt at each merge, one pair at a time: 84 s CPU for 1,000 orphans)
    heap = [(-float(s), -a, -b) for a in groups
            if (later := [b for b in groups if b > a])
            for b, s in zip(later, worst(a, later), strict=True)]
    heapq.heapify(heap)  # the least of (-score, -a, -b): the best score, the latest pair
    new = len(order)
    while heap:
        score, a, b = heapq.heappop(heap)
        if -a not in groups or -b not in groups:
            continue
        if -score < loosest:
            break
        groups[new] = groups.pop(-a) + groups.pop(-b)
        sums[new] = sums.pop(-a) + sums.pop(-b)
        if others := list(groups)[:-1]:  # all but the new group, the last added
            for k, s in zip(others, worst(new, others), strict=True):
                heapq.heappush(heap, (-float(s), -k, -new))
        new += 1
    return sorted((sorted(g, key=order.__getitem__) for g in groups.values() if len(g) >= 2),
                  key=lambda g: order[g[0]])


def parent_groups(labels: Sequence[Sequence[str]], filed: Sequence[Sequence[str]],
                  prototypes: dict[str, np.ndarray], min_size: int
                  ) -> list[tuple[list[str], np.ndarray]]:
    """The proposed parents: each group of orphans (`orphan_groups`) and the indices of the
    articles filed under any of them (`filed`: per article, people's labels, else the
    model's), when there are at least `min_size`; largest first, each's categories too."""
    carried = Counter(name for given in labels for name in given)
    out = []
    for group in orphan_groups(labels, prototypes):
        members = set(group)
        rows = np.array([i for i, names in enumerate(filed) if members & set(names)], dtype=int)
        if len(rows) >= min_size:
            out.append((sorted(group, key=lambda c: (-carried[c], c)), rows))
    return sorted(out, key=lambda p: (-len(p[1]), p[0]))


def shared_name(children: Sequence[str], words: Callable[[str], list[str]]) -> str | None:
    """The word the most of `children`'s names contain, the longer among equals, if enough
    of them do: of two characters or more, within one of the words `words` cuts a name into
    (医学 of 口腔医学; never across two, as 学与 of 科学与工程)."""
    candidates = {w[i:j] for name in children for w in words(name) if plain_tag(w)
                  for i in range(len(w)) for j in range(i + 2, len(w) + 1)}
    counted = [(sum(w.casefold() in name.casefold() for name in children), len(w), w)
               for w in sorted(candidates)]
    if not counted:
        return None
    n, _, word = max(counted)
    return word if n >= max(2, math.ceil(SHARED_NAME * len(children))) else None
