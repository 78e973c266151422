"""hybrid.learn.zero_shot: a model on day one, before any article is labelled."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from helpers import cron, records

from hybrid import data
from hybrid.learn.features import Features
from hybrid.learn.model import HybridModel
from hybrid.learn.zero_shot import TaxonomyPrior
from hybrid.taxonomy import parse_taxonomy


@pytest.fixture(scope="module")
def zero_shot_model(sample_articles, sample_taxonomy, config) -> HybridModel:
    unlabelled = [replace(a, categories=[], tags=[]) for a in sample_articles]
    return HybridModel.train(unlabelled, sample_taxonomy, config)


def test_training_without_labels_gives_a_zero_shot_model(zero_shot_model, sample_articles):
    assert zero_shot_model.zero_shot and zero_shot_model.manifest["zero_shot"] is True
    assert "zero-shot" in zero_shot_model.summary("out")
    predictions = zero_shot_model.predict(sample_articles)
    names = set(zero_shot_model.taxonomy.names)
    assert all(p.zero_shot and set(p.categories) <= names and p.categories and p.tags
               for p in predictions)
    right = sum(p.categories[0] in a.categories for a, p in
                zip(sample_articles, predictions, strict=True))
    assert right / len(sample_articles) >= 0.6  # from names, descriptions and keywords alone


def test_a_zero_shot_model_saves_loads_and_explains(zero_shot_model, tmp_path, run):
    zero_shot_model.save(tmp_path / "zs")
    result = run("predict", "--model", str(tmp_path / "zs"), "--explain",
                 input='{"id": "z", "title": "用 PyTorch 训练图像分类模型", '
                       '"content": "卷积神经网络与数据增强。"}')
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["zero_shot"] is True and out["categories"][0] == "人工智能"


def test_hybrid_train_on_unlabelled_articles_succeeds(run, tmp_path):
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                  for r in records(40)), encoding="utf-8")
    result = run("train", "--data", str(unlabelled), "--taxonomy",
                 str(data.path("sample_taxonomy.json")), "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    assert "zero-shot" in result.stdout


def test_hybrid_run_works_on_day_one(store, mongo_config, zero_shot_model, tmp_path):
    zero_shot_model.save(tmp_path / "zs")
    store.import_records(records(20))
    result = cron(mongo_config, "run", "--model", str(tmp_path / "zs"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["zero_shot"] is True and report["counts"]["tagged"] == 20
    assert "zero-shot model" in cron(mongo_config, "run", "--model",
                                     str(tmp_path / "zs")).stdout


def test_terms_match_whole_latin_words_and_anywhere_in_chinese(config):
    taxonomy = parse_taxonomy([{"name": "os", "keywords": ["内核"]}, {"name": "cloud"}])
    prior = TaxonomyPrior(taxonomy, HybridModel.embedder_for(config)).fit()

    def features(title: str, text: str) -> Features:
        return Features(embedding=prior.prototypes_[1], words=[], head_words=[],
                        candidates=[], title=title, lexical=text)

    cost, kernel = prior.decision_function([features("", "the cost of clouds"),
                                            features("Linux 内核", "OS 的内核")])
    assert cost[0] < kernel[0]  # "cost" is not "os"; 内核 counts in title and text
