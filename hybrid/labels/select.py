"""Which articles are worth a label, when labels cost money or a person's time.

The first round covers the corpus and the taxonomy: the articles nearest the centres of
k-means clusters of the embeddings, and for each category the current model (zero-shot on
day one) expects in none of them, the article it thinks likeliest to be in it. Clusters
come first because the labels should look like the corpus: picking each category's
likeliest article first made a tenth of the labels the zero-shot model's easiest cases,
and the model learned from them that it needed nothing but its zero-shot scores. Later
rounds take what the model is least sure of (the smallest margin between its two best
categories), spread over the corpus by clustering those candidates, since the least sure
articles tend to be near-duplicates of one another. `random` is the baseline the benchmark
compares with.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin

STRATEGIES = ("active", "random")
_UNCERTAIN_POOL = 3  # candidates per pick, before spreading them out


def by_category(proba: np.ndarray, k: int, exclude: Collection[int]) -> list[int]:
    """Round-robin over the categories: each takes its likeliest article not yet taken."""
    taken = set(exclude)
    order = np.argsort(-proba, axis=0, kind="stable")
    picked: list[int] = []
    rank = [0] * proba.shape[1]
    while len(picked) < k and len(taken) < len(proba):
        for j in range(proba.shape[1]):
            while rank[j] < len(proba) and int(order[rank[j], j]) in taken:
                rank[j] += 1
            if rank[j] < len(proba) and len(picked) < k:
                picked.append(int(order[rank[j], j]))
                taken.add(picked[-1])
    return picked


def diverse(embeddings: np.ndarray, k: int, exclude: Collection[int] = (),
            among: Collection[int] | None = None, seed: int = 0) -> list[int]:
    """The article nearest each of the centres of `k` clusters."""
    pool = np.array([i for i in (range(len(embeddings)) if among is None else among)
                     if i not in set(exclude)], dtype=int)
    if k <= 0:
        return []
    if len(pool) <= k:
        return [int(i) for i in pool]
    points = embeddings[pool]
    centres = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(points).cluster_centers_
    nearest = pairwise_distances_argmin(centres, points)
    return [int(pool[i]) for i in dict.fromkeys(nearest)]


def uncertain(proba: np.ndarray, embeddings: np.ndarray, k: int, exclude: Collection[int],
              seed: int = 0) -> list[int]:
    """The least sure articles (smallest margin), spread out by clustering."""
    top2 = -np.sort(-proba, axis=1)[:, :2]
    margin = top2[:, 0] - (top2[:, 1] if proba.shape[1] > 1 else 0.0)
    taken = set(exclude)
    candidates = [int(i) for i in np.argsort(margin, kind="stable") if int(i) not in taken]
    return diverse(embeddings, k, among=candidates[:_UNCERTAIN_POOL * k], seed=seed)


def choose(strategy: str, first: bool, proba: np.ndarray, embeddings: np.ndarray, k: int,
           exclude: Collection[int], seed: int = 0) -> list[int]:
    """`k` article indices to label next; never one in `exclude`."""
    if strategy == "random":
        pool = [i for i in range(len(proba)) if i not in set(exclude)]
        rng = np.random.default_rng(seed)
        return [int(i) for i in rng.permutation(pool)[:k]]
    if not first:
        return uncertain(proba, embeddings, k, exclude, seed)
    clusters = diverse(embeddings, k, exclude, seed=seed)
    expected = {int(proba[i].argmax()) for i in clusters}
    taken = {*exclude, *clusters}
    covering: list[int] = []
    for j in (j for j in range(proba.shape[1]) if j not in expected):
        likeliest = next((int(i) for i in np.argsort(-proba[:, j], kind="stable")
                          if int(i) not in taken), None)
        if likeliest is not None:
            covering.append(likeliest)
            taken.add(likeliest)
    return (covering + clusters)[:k] if len(covering) < k else covering[:k]
