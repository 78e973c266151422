"""hybrid.learn.artifacts: the model directory is verified before anything loads."""

from __future__ import annotations

import json
import shutil

import pytest

from hybrid.errors import ModelError
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import parse_taxonomy


def test_save_and_load_round_trip(sample_model_dir, sample_model, config, sample_articles):
    manifest = json.loads((sample_model_dir / "manifest.json").read_text())
    assert manifest["taxonomy_fingerprint"] == sample_model.taxonomy.fingerprint
    assert manifest["embedder_id"] == "use-multilingual-v3"
    assert {"numpy", "scikit-learn", "faiss-cpu"} <= set(manifest["versions"])
    assert 0 < manifest["metrics"]["accuracy_top1"] <= 1 and manifest["created_at"]
    assert set(manifest["files"]) >= {"classifier.joblib", "tagger.joblib", "neighbours.faiss"}
    again = HybridModel.load(sample_model_dir, config=config)
    a = sample_model.predict(sample_articles[:5])
    b = again.predict(sample_articles[:5])
    assert [p.output() for p in a] == [p.output() for p in b]


def test_loading_verifies_checksums(sample_model_dir, tmp_path, config):
    broken = tmp_path / "broken"
    shutil.copytree(sample_model_dir, broken)
    with (broken / "classifier.joblib").open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelError, match="checksum"):
        HybridModel.load(broken, config=config)


def test_loading_refuses_a_different_taxonomy(sample_model_dir, config):
    other = parse_taxonomy(["前端开发", "后端开发"], source="new.json")
    with pytest.raises(ModelError, match="Retrain") as err:
        HybridModel.load(sample_model_dir, other, config)
    assert "new.json" in str(err.value)
