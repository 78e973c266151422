"""hybrid.labels.sources: training from the manual labels of a collection."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from helpers import cron, records

from hybrid import data
from hybrid.learn.model import HybridModel
from hybrid.mongo.store import Store


@pytest.fixture
def trained_on(sample_model_dir, monkeypatch) -> list:
    """The articles `hybrid train` trains on (training itself is tested elsewhere)."""
    seen = []

    def train(articles, taxonomy, config, **kwargs):
        seen.extend(articles)
        return HybridModel.load(sample_model_dir, config=config)

    monkeypatch.setattr(HybridModel, "train", train)
    return seen


def test_train_reads_the_manual_labels_of_the_collection(mongo_config, tmp_path, trained_on):
    labelled = records(30, labels=True)
    labelled_file = tmp_path / "labelled.jsonl"
    labelled_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labelled),
                    encoding="utf-8")
    result = cron(mongo_config, "mongo", "import", str(labelled_file), "--manual")
    assert result.exit_code == 0 and "imported 30" in result.stdout
    with Store(mongo_config) as store:
        store.import_records(records(34)[30:])  # unlabelled: not for training
        store.articles.update_one({"_id": "s030"}, {"$set": {"hybrid.source": "model"}})
        store.articles.update_one({"_id": "s031"}, {"$set": {"hybrid.locked": True,
                                                             "categories": ["数据库"]}})
    result = cron(mongo_config, "train", "--label-source", "manual", "--taxonomy",
                 str(data.path("sample_taxonomy.json")), "--out", str(tmp_path / "model"))
    assert result.exit_code == 0, result.output
    assert sorted(a.id for a in trained_on) == [f"s{i:03d}" for i in range(1, 30)] + ["s031"]
    assert all(a.categories and a.content for a in trained_on)


def test_with_too_few_labels_train_learns_zero_shot_from_the_whole_collection(
        mongo_config, tmp_path, trained_on):
    """docs/day-one.md step 2 on MongoDB: the collection's articles are the zero-shot model's
    corpus, as a JSONL file's would be; the tags a nightly run wrote are no one's labels."""
    with Store(mongo_config) as store:
        store.import_records(records(2, labels=True), manual=True)
        store.import_records(records(12)[2:])
        store.articles.update_one({"_id": "s005"}, {"$set": {
            "categories": ["数据库"], "tags": ["模型写的"], "hybrid.source": "model"}})
    result = cron(mongo_config, "train", "--label-source", "manual", "--taxonomy",
                  str(data.path("sample_taxonomy.json")), "--out", str(tmp_path / "model"))
    assert result.exit_code == 0, result.output
    assert sorted(a.id for a in trained_on) == [f"s{i:03d}" for i in range(1, 13)]
    assert {a.id for a in trained_on if a.categories or a.tags} == {"s001", "s002"}
    empty = cron(replace(mongo_config, mongo_collection="empty"), "train", "--label-source",
                 "manual", "--taxonomy", str(data.path("sample_taxonomy.json")), "--out",
                 str(tmp_path / "none"))
    assert empty.exit_code == 2 and "no articles to train on in" in empty.output
