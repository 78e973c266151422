"""hybrid.evaluation.routing: what a perfect teacher recovers, through the real LLM path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hybrid.evaluation.routing import ceiling, top1_accuracy


def test_the_least_confident_are_where_the_errors_are(sample_model, sample_articles, config,
                                                      sample_taxonomy):
    """The sample model's own predictions, with confidence 0 exactly where it is wrong:
    answering the lowest-confidence 10% fixes every error there, a random 10% fewer."""
    articles = sample_articles[:60]
    gold = [sample_taxonomy.map_labels(a.categories)[0] for a in articles]
    predictions = sample_model.predict(articles)
    wrong = [i for i, a in enumerate(articles) if i % 10 == 0]
    for i in wrong:  # make six articles wrong and the least sure
        other = next(n for n in sample_taxonomy.names if n not in gold[i])
        predictions[i] = replace(predictions[i], categories=[other], confidence=0.01)
    before = top1_accuracy(predictions, gold)
    rows = ceiling(articles, predictions, sample_taxonomy, config)
    assert [r["articles"] for r in rows] == [6, 12]
    first = rows[0]
    assert first["accuracy"] == pytest.approx(before)
    assert first["lowest_confidence"] == pytest.approx(before + len(wrong) / len(articles))
    assert first["random"] < first["lowest_confidence"]
