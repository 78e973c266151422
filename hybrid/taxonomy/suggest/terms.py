"""Class-based TF-IDF (BERTopic's c-TF-IDF): the terms that make one group of articles
different from the others.

The terms are the tag candidates the segmenter found in each article (whole words and
compounds, never a piece of a sentence), counted once per article: a group's term frequency
is how many of its articles use the term. Score = (share of the group's term uses) x
log(1 + average uses per group / the term's uses in all groups). A term needs a few
articles of the group behind it, so one article's oddity never names a group.

Beside its score, each term says how many of the group's articles use it and its lift: how
much more often they do than the articles read overall (a word every kind of article uses,
分析 or 影响, has a lift near 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from hybrid.ingest.keys import label_key, plain_tag

MIN_SHARE = 0.1  # of a group's articles that must use a term, and at least MIN_ARTICLES
MIN_ARTICLES = 2
MIN_CHARS = 2


@dataclass(frozen=True)
class Term:
    text: str  # the spelling the group's articles use most
    score: float  # class-based TF-IDF
    articles: int  # of the group that use it
    lift: float  # its share of the group's articles / its share of all articles read


def _usable(key: str) -> bool:
    return (len(key) >= MIN_CHARS and plain_tag(key) is not None
            and not key.replace(".", "").isdigit())


def _keys(terms: Sequence[str]) -> list[str]:
    return list({key for t in terms if _usable(key := label_key(t))})


@dataclass(frozen=True)
class ClassTerms:
    """The class-based TF-IDF of some groups: a row per group, a column per term key."""

    scores: np.ndarray  # (groups, terms)
    per_group: np.ndarray  # (groups, terms): how many of the group's articles use the term
    site: np.ndarray  # (terms,): the share of all articles that use it
    vocabulary: np.ndarray  # (terms,) the term keys


def term_uses(terms: Sequence[Sequence[str]]) -> tuple[sparse.csr_matrix, np.ndarray] | None:
    """Which usable term keys each article uses (articles x keys, 0/1) and the keys; None
    when no term is usable. Counted once, scored for any grouping by `class_tfidf`."""
    vectorizer = CountVectorizer(analyzer=_keys, binary=True)
    try:
        return vectorizer.fit_transform(terms).tocsr(), vectorizer.get_feature_names_out()
    except ValueError:  # no usable term anywhere
        return None


def class_tfidf(uses: sparse.csr_matrix, vocabulary: np.ndarray,
                groups: Sequence[Sequence[int]]) -> ClassTerms:
    """The groups' (row indices of `uses`) class-based TF-IDF."""
    membership = sparse.csr_matrix(
        (np.ones(sum(len(g) for g in groups)),
         (np.repeat(np.arange(len(groups)), [len(g) for g in groups]),
          np.concatenate([np.asarray(g, dtype=int) for g in groups]))),
        shape=(len(groups), uses.shape[0]))
    per_group = np.asarray((membership @ uses).todense(), dtype=float)
    totals = per_group.sum(axis=1, keepdims=True)
    tf = per_group / np.maximum(totals, 1.0)
    idf = np.log1p(totals.mean() / np.maximum(per_group.sum(axis=0), 1.0))
    return ClassTerms(tf * idf, per_group,
                      np.asarray(uses.sum(axis=0), dtype=float).ravel() / uses.shape[0],
                      vocabulary)


def distinctive_terms(terms: Sequence[Sequence[str]], groups: Sequence[Sequence[int]],
                      top: int = 10) -> list[list[Term]]:
    """For each group (indices into `terms`), its `top` terms, best first."""
    if not groups:
        return []
    if (used := term_uses(terms)) is None:
        return [[] for _ in groups]
    table = class_tfidf(*used, groups)
    scores, per_group, site = table.scores, table.per_group, table.site
    vocabulary = table.vocabulary
    out = []
    for g, members in enumerate(groups):
        enough = per_group[g] >= max(MIN_ARTICLES, MIN_SHARE * len(members))
        ranked = [j for j in np.argsort(-scores[g], kind="stable") if enough[j]][:top]
        shown = _spellings([terms[i] for i in members])
        out.append([Term(shown.get(vocabulary[j], vocabulary[j]), float(scores[g, j]),
                         int(per_group[g, j]),
                         float(per_group[g, j] / len(members) / max(site[j], 1e-12)))
                    for j in ranked])
    return out


def _spellings(term_lists: Sequence[Sequence[str]]) -> dict[str, str]:
    """Each term key's most used spelling."""
    seen: dict[str, Counter] = {}
    for terms in term_lists:
        for t in terms:
            seen.setdefault(label_key(t), Counter())[t.strip()] += 1
    return {key: counts.most_common(1)[0][0] for key, counts in seen.items()}
