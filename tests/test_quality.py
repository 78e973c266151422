"""On real articles (../shared/data; skipped when absent): one held-out split, every method."""

import numpy as np
from conftest import shared_data

from hybrid.article import load_articles
from hybrid.evaluate import evaluate
from hybrid.model import HybridModel
from hybrid.taxonomy import load_taxonomy


def test_held_out_quality_on_a_real_blog(config):
    data = shared_data("jiegec.jsonl")
    taxonomy = load_taxonomy(data.parent / "taxonomies" / "jiegec.json")
    articles = load_articles(data, config)
    order = np.random.default_rng(0).permutation(len(articles))
    cut = int(0.8 * len(articles))
    train = [articles[i] for i in order[:cut]]
    test = [articles[i] for i in order[cut:]]
    model = HybridModel.train(train, taxonomy, config)
    methods = evaluate(model, test, baseline_train=train)["methods"]
    ours = methods["hybrid"]
    assert ours["categories"]["accuracy_top1"] >= 0.6
    best_baseline = max(methods[m]["categories"]["accuracy_top1"]
                        for m in ("tfidf_lr", "embedding_lr"))
    assert ours["categories"]["accuracy_top1"] >= best_baseline - 0.03
    assert ours["tags"]["f1_at_5"] >= 1.5 * methods["jieba_extract_tags"]["tags"]["f1_at_5"]
