"""hybrid.labels.select: where labels help most."""

from __future__ import annotations

import numpy as np

from hybrid.labels.select import by_category, choose, diverse, uncertain


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 16)) * 5
    return np.vstack([c + rng.normal(size=(40, 16)) for c in centres])


def test_by_category_gives_every_category_its_likeliest_article():
    proba = np.full((30, 3), 0.1)
    proba[7, 0], proba[3, 1], proba[21, 2] = 0.9, 0.8, 0.7
    assert by_category(proba, 3, exclude=[]) == [7, 3, 21]
    assert 7 not in by_category(proba, 3, exclude=[7])


def test_diverse_takes_one_article_from_every_cluster():
    points = blobs()
    picked = diverse(points, 5)
    assert sorted(i // 40 for i in picked) == [0, 1, 2, 3, 4]
    assert not set(diverse(points, 5, exclude=picked)) & set(picked)


def test_uncertain_takes_small_margins_and_never_an_excluded_article():
    points = blobs(1)
    proba = np.tile([0.9, 0.1], (200, 1))
    unsure = [5, 50, 95, 140, 185, 186]
    proba[unsure] = [0.51, 0.49]
    picked = uncertain(proba, points, 4, exclude=[186])
    assert set(picked) <= set(unsure) - {186} and len(picked) == 4


def test_the_first_active_round_covers_categories_and_clusters():
    points = blobs(2)
    proba = np.random.default_rng(0).dirichlet(np.ones(4), size=200)
    picked = choose("active", True, proba, points, 9, exclude=[0, 1])
    assert len(set(picked)) == 9 and not {0, 1} & set(picked)
    assert len({i // 40 for i in picked}) == 5  # every cluster
    for j in range(4):  # every category: expected in a pick, or its likeliest article taken
        likeliest = next(int(i) for i in np.argsort(-proba[:, j]) if i not in (0, 1))
        assert j in {int(proba[i].argmax()) for i in picked} or likeliest in picked
    random_pick = choose("random", True, proba, points, 9, exclude=[0, 1])
    assert len(set(random_pick)) == 9 and not {0, 1} & set(random_pick)
