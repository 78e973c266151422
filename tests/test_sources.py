"""hybrid.labels.sources: training from the manual labels of a collection."""

from __future__ import annotations

import json

from helpers import cron, records

from hybrid import data
from hybrid.learn.model import HybridModel
from hybrid.mongo.store import Store


def test_train_reads_the_manual_labels_of_the_collection(mongo_config, sample_model_dir,
                                                         tmp_path, monkeypatch):
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
    trained_on = []

    def train(articles, taxonomy, config, **kwargs):  # training itself is tested elsewhere
        trained_on.extend(articles)
        return HybridModel.load(sample_model_dir, config=config)

    monkeypatch.setattr(HybridModel, "train", train)
    result = cron(mongo_config, "train", "--label-source", "manual", "--taxonomy",
                 str(data.path("sample_taxonomy.json")), "--out", str(tmp_path / "model"))
    assert result.exit_code == 0, result.output
    assert sorted(a.id for a in trained_on) == [f"s{i:03d}" for i in range(1, 30)] + ["s031"]
    assert all(a.categories and a.content for a in trained_on)
