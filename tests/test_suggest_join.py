"""`taxonomy suggest` joins the groups that are one subject: their articles' tags are alike."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from hybrid.config import Config
from hybrid.learn.tag_select import TagScore
from hybrid.mongo.fields import STATE
from hybrid.taxonomy.suggest.articles import people_labels
from hybrid.taxonomy.suggest.corpus import Corpus, article_tags
from hybrid.taxonomy.suggest.describe import frequent_tags
from hybrid.taxonomy.suggest.join import join_groups


def test_two_halves_of_a_subject_join_and_a_neighbouring_subject_stays_apart():
    """Horticulture cut in two by the clusterer, and soil science beside it: soil papers
    say 栽培 like one half, and 产量 like the crop papers the site already files; only the
    two halves share 园艺 and 果树. Every paper has a keyword of its own as well."""
    crops = ["小麦", "水稻", "玉米", "大豆", "棉花"]  # five existing categories
    tags = ([["园艺", "果树", "栽培"]] * 6 + [["园艺", "果树", "嫁接"]] * 6
            + [["土壤", "施肥", "栽培", "产量"]] * 6
            + [["栽培", "产量", crop] for crop in crops for _ in range(6)])
    tags = [[*t, f"术语{i}"] for i, t in enumerate(tags)]
    groups = [np.arange(0, 6), np.arange(6, 12), np.arange(12, 18)]
    filed = [list(range(18 + 6 * k, 24 + 6 * k)) for k in range(len(crops))]
    joined = join_groups(tags, groups, filed)
    assert [list(g) for g in joined] == [list(range(12)), list(range(12, 18))]


def test_groups_with_nothing_in_common_or_no_tags_stay_as_they_are():
    tags = [["量子比特"]] * 5 + [["Redis"]] * 5 + [[]] * 5
    groups = [np.arange(10, 15), np.arange(0, 5), np.arange(5, 10)]
    joined = join_groups(tags, groups, [])
    assert sorted(map(list, joined)) == sorted(map(list, groups))
    assert [list(g) for g in join_groups([[]] * 10, groups[1:], [])] == [list(g)
                                                                     for g in groups[1:]]


def test_an_article_without_tags_carries_the_models_and_a_group_counts_them():
    """After a run, an article people never labelled carries the model's tags; one read
    from a file may carry none, and the model's stand in (for joining and naming)."""
    n = 4
    corpus = Corpus([f"a{i}" for i in range(n)], [""] * n, [[]] * n,
                    [["园艺"], [], ["园艺", "果树"], []], [None] * n,
                    [f"features {i}" for i in range(n)], np.eye(n), np.zeros((n, 2)),
                    np.zeros(n), [[]] * n, [])
    asked = []

    def suggest(features):
        asked.extend(features)
        return [[TagScore("果树", 1.0, True, 0.0)] for _ in features]

    model = SimpleNamespace(tagger=SimpleNamespace(suggest=suggest))
    tags = article_tags(corpus, [0, 1, 2], model)
    assert tags == [["园艺"], ["果树"], ["园艺", "果树"], []]
    assert asked == ["features 1"]  # only the untagged article of a group
    assert frequent_tags(np.array([0, 1, 2]), tags) == [{"tag": "园艺", "articles": 2},
                                                        {"tag": "果树", "articles": 2}]


def test_the_collections_labels_and_tags_count_only_where_people_gave_them():
    """A run's own tags would join groups of different subjects: they are no evidence."""
    config = Config()
    article = {"_id": "a1", "title": "t"}
    given = {config.categories_field: ["数据库"], config.tags_field: ["Redis"]}
    by_model = people_labels(article, {**given, STATE: {"source": "model"}}, config)
    assert by_model[config.categories_field] is None and by_model[config.tags_field] is None
    for state in ({}, {STATE: {"source": "manual"}}):  # the author's, or a person's edit
        read = people_labels(article, {**given, **state}, config)
        assert read[config.tags_field] == ["Redis"] and read[config.categories_field] == [
            "数据库"]
