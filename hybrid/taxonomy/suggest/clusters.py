"""Group the badly fitted articles into candidate categories; the clusterer decides how many.

Each article is described by its sentence embedding, its words (TF-IDF over the segmented
words, reduced by SVD) and the categories people already gave it (articles that lack the
same second label belong together). HDBSCAN finds the groups, after t-SNE has laid the
articles out in two dimensions: in the 700-odd dimensions themselves distances crowd
together and HDBSCAN calls most articles noise, which is why BERTopic reduces with UMAP
first. openTSNE does that job here (FFT-accelerated: 2,000 articles in 5 s on one core,
where scikit-learn's t-SNE took 44 s). HDBSCAN's leaf clusters are kept (its "excess of
mass" choice merged unrelated groups on the dev sets).

Leaf clusters are small: one subject often comes out as several. Two groups whose centres
are more alike than the two most alike categories of the list are one subject at this
site's grain, and are merged (closest first).

An article stays in its group only when it is closer to the group's centre than to every
existing category's prototype: one nearer a category the list has fits the list after all,
and is no evidence for a new one. The categories people already gave the article are left
out of that comparison: a paper filed under its field (农学) that lacks its discipline (园艺学)
is near the field's prototype because the field holds its discipline's papers, not because
the list has a place for it (on the hide-and-recover bench, this comparison took a tenth of
a hidden discipline's articles out of its group and left it under half in 7 of 75 cases).
An article left as noise joins the nearest group on the same condition (BERTopic users'
first complaint is a third of their documents left as outliers).

A group then claims what it would hold as a category: every article that lacks a label
(none, or a field without its discipline) and is nearer its centre than every prototype
of a category it does not carry yet and every other group, however sure the model was of
the category it had to choose (the model never knew the missing one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from openTSNE import TSNE
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from hybrid.learn.features import doc_words
from hybrid.taxonomy.suggest.corpus import Corpus

LEXICAL_WEIGHT = 0.7  # the words' part beside the embedding's (each unit length)
LABEL_WEIGHT = 1.0  # the categories people gave, as a unit vector
LEXICAL_DIMENSIONS = 100
MIN_SAMPLES = 3  # HDBSCAN: an article is in a dense region with this many neighbours
MAX_PERPLEXITY = 30.0


def cluster_features(corpus: Corpus, rows: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The rows' description for clustering: [embedding, words, labels], unit length."""
    words = TfidfVectorizer(analyzer=doc_words, sublinear_tf=True, min_df=2, max_df=0.5)
    try:
        counts = words.fit(corpus.features).transform([corpus.features[i] for i in rows])
    except ValueError:  # too few articles or words for a vocabulary
        counts = None
    parts = [corpus.embeddings[rows]]
    dims = min(LEXICAL_DIMENSIONS, len(rows) - 1, 0 if counts is None else counts.shape[1] - 1)
    if dims >= 2:
        lexical = TruncatedSVD(dims, random_state=0).fit_transform(counts)
        parts.append(LEXICAL_WEIGHT * normalize(lexical))
    given = carried_by([corpus.labels[i] for i in rows], names).astype(float)
    parts.append(LABEL_WEIGHT * normalize(given))
    return normalize(np.hstack(parts))


def find_groups(features: np.ndarray, min_size: int, random_state: int = 0) -> np.ndarray:
    """A group number per row, -1 for noise."""
    n = len(features)
    if n < 2 * min_size or n < 4:
        return np.full(n, -1)
    layout = np.asarray(TSNE(n_components=2, metric="cosine", random_state=random_state,
                             perplexity=min(MAX_PERPLEXITY, (n - 1) / 3), n_jobs=1
                             ).fit(features))
    return HDBSCAN(min_cluster_size=min_size, min_samples=min(MIN_SAMPLES, min_size),
                   cluster_selection_method="leaf").fit(layout).labels_


def _centres(embeddings: np.ndarray, groups: np.ndarray, found: list[int]) -> np.ndarray:
    return normalize(np.vstack([embeddings[groups == g].mean(axis=0) for g in found]))


def merge_close(embeddings: np.ndarray, groups: np.ndarray,
                prototypes: np.ndarray) -> np.ndarray:
    """Merge groups closer to each other than any two categories' prototypes are."""
    if len(prototypes) < 2:
        return groups
    between = prototypes @ prototypes.T
    finest = between[np.triu_indices(len(prototypes), 1)].max()
    groups = groups.copy()
    while len(found := sorted(set(groups) - {-1})) > 1:
        centres = _centres(embeddings, groups, found)
        sims = centres @ centres.T
        np.fill_diagonal(sims, -np.inf)
        a, b = np.unravel_index(int(sims.argmax()), sims.shape)
        if sims[a, b] <= finest:
            break
        groups[groups == found[b]] = found[a]
    return groups


def carried_by(labels: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """(articles, prototypes) booleans: which of the prototypes' categories (`names`, in the
    prototypes' order) people already gave each article."""
    column = {name: j for j, name in enumerate(names)}
    out = np.zeros((len(labels), len(names)), dtype=bool)
    for i, given in enumerate(labels):
        out[i, [column[n] for n in given if n in column]] = True
    return out


def _to_categories(embeddings: np.ndarray, prototypes: np.ndarray,
                   carried: np.ndarray) -> np.ndarray:
    """Each article's similarity to its nearest category prototype, of the categories it
    does not carry yet (`carried`: per article and prototype, as `carried_by`)."""
    if not len(prototypes):
        return np.full(len(embeddings), -np.inf)
    return np.where(carried, -np.inf, embeddings @ prototypes.T).max(axis=1)


def keep_members(embeddings: np.ndarray, groups: np.ndarray, prototypes: np.ndarray,
                 carried: np.ndarray) -> np.ndarray:
    """A group's member nearer the prototype of some category it does not carry yet
    (`carried`, as `carried_by`) than its group's centre becomes noise: far from every such
    prototype is the second half of "fits the list badly"."""
    groups = groups.copy()
    found = sorted(set(groups) - {-1})
    if not found:
        return groups
    centres = _centres(embeddings, groups, found)
    member = groups != -1
    own = np.searchsorted(found, groups[member])
    to_own = np.einsum("ij,ij->i", embeddings[member], centres[own])
    near = _to_categories(embeddings[member], prototypes, carried[member])
    groups[np.flatnonzero(member)[to_own <= near]] = -1
    return groups


def adopt_noise(embeddings: np.ndarray, groups: np.ndarray, prototypes: np.ndarray,
                carried: np.ndarray) -> np.ndarray:
    """Noise joins the nearest group whose centre is closer than every prototype of a
    category it does not carry yet."""
    groups = groups.copy()
    found = sorted(set(groups) - {-1})
    if not found:
        return groups
    centres = _centres(embeddings, groups, found)
    to_groups = embeddings @ centres.T
    to_categories = _to_categories(embeddings, prototypes, carried)
    best = to_groups.argmax(axis=1)
    noise = (groups == -1) & (to_groups.max(axis=1) > to_categories)
    groups[noise] = np.asarray(found)[best[noise]]
    return groups


def claim(embeddings: np.ndarray, found: list[np.ndarray], others: np.ndarray,
          prototypes: np.ndarray, carried: np.ndarray) -> list[np.ndarray]:
    """Each of `others` (indices into `embeddings`) joins the group (of `found`) whose centre
    is nearest, if it is nearer than every prototype of a category it does not carry."""
    if not found or not len(others):
        return found
    centres = normalize(np.vstack([embeddings[g].mean(axis=0) for g in found]))
    to_groups = embeddings[others] @ centres.T
    nearest = to_groups.argmax(axis=1)
    joins = to_groups.max(axis=1) > _to_categories(embeddings[others], prototypes,
                                                   carried[others])
    return [np.sort(np.concatenate([g, others[joins & (nearest == k)]]))
            for k, g in enumerate(found)]


def cluster(corpus: Corpus, rows: np.ndarray, names: Sequence[str], prototypes: np.ndarray,
            carried: np.ndarray, min_size: int, others: np.ndarray | None = None
            ) -> list[np.ndarray]:
    """Groups of at least `min_size` of `rows` (corpus indices) and the `others` they claim,
    largest first. `carried`: per corpus article and prototype, whether people gave it that
    category (`carried_by`)."""
    if not len(rows):
        return []
    groups = find_groups(cluster_features(corpus, rows, names), min_size)
    groups = merge_close(corpus.embeddings[rows], groups, prototypes)
    groups = keep_members(corpus.embeddings[rows], groups, prototypes, carried[rows])
    groups = adopt_noise(corpus.embeddings[rows], groups, prototypes, carried[rows])
    found = [rows[groups == g] for g in sorted(set(groups) - {-1})]
    if others is not None:
        found = claim(corpus.embeddings, found, others, prototypes, carried)
    return sorted((g for g in found if len(g) >= min_size), key=lambda g: (-len(g), g[0]))
