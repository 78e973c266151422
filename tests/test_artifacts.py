"""hybrid.learn.artifacts: the model directory is verified before anything in it is used.

The tamper suite changes a copy of the sample model in every way we could think of and asks
`hybrid predict` (and `tag-file --workers 2`) to use it: every case must exit 4 and run
nothing planted in the directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import synthetic_features

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit, ModelError
from hybrid.learn import artifacts
from hybrid.learn.classifier import CategoryClassifier
from hybrid.learn.model import HybridModel
from hybrid.learn.zero_shot import TaxonomyPrior, ZeroShotClassifier
from hybrid.taxonomy import parse_taxonomy

ARTICLE = '{"id": "t", "title": "Redis 持久化", "content": "RDB 与 AOF"}'
MARKER = Path("/tmp/hybrid-tamper-test-ran-code")


class Planted:
    """What an attacker would put in a model file: building it runs code."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))

    def __setstate__(self, state):
        MARKER.touch()


def predict(model_dir: Path, cache_dir: Path, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["--quiet", "--cache-dir", str(cache_dir), "predict",
                                     "--model", str(model_dir)], input=ARTICLE,
                              env={"MONGODB_URI": "", "HYBRID_MODEL_KEY": "", **(env or {})})


@pytest.fixture
def copy(sample_model_dir, tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(sample_model_dir, out)
    MARKER.unlink(missing_ok=True)
    yield out
    assert not MARKER.exists(), "code planted in the model directory ran"


def rewrite_manifest(model: Path, edit: Callable[[dict], None], digest: bool = True) -> None:
    """Edit the manifest as an attacker who knows the format (and recomputes the digest)."""
    manifest = json.loads((model / "manifest.json").read_text(encoding="utf-8"))
    edit(manifest)
    if digest:
        manifest["digest"] = artifacts._digest(manifest)
    (model / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False),
                                         encoding="utf-8")


def rehash(model: Path, name: str) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        manifest["files"][name] = hashlib.sha256((model / name).read_bytes()).hexdigest()
    return edit


def assert_refused(model: Path, cache_dir: Path, *words: str, env: dict | None = None) -> None:
    result = predict(model, cache_dir, env)
    assert result.exit_code == Exit.MODEL, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def test_save_and_load_round_trip(sample_model_dir, sample_model, config, sample_articles):
    manifest = json.loads((sample_model_dir / "manifest.json").read_text())
    assert manifest["taxonomy_fingerprint"] == sample_model.taxonomy.fingerprint
    assert manifest["embedder_id"] == "use-multilingual-v3"
    assert {"numpy", "scikit-learn", "faiss-cpu"} <= set(manifest["versions"])
    assert 0 < manifest["metrics"]["accuracy_top1"] <= 1 and manifest["created_at"]
    assert set(manifest["files"]) == set(artifacts.FILES)
    assert {p.name for p in sample_model_dir.iterdir()} == {*artifacts.FILES, "manifest.json"}
    again = HybridModel.load(sample_model_dir, config=config)
    a = sample_model.predict(sample_articles[:5])
    b = again.predict(sample_articles[:5])
    assert [p.output() for p in a] == [p.output() for p in b]
    assert [p.scores for p in a] == [p.scores for p in b]


def test_loading_refuses_a_different_taxonomy(sample_model_dir, config):
    other = parse_taxonomy(["前端开发", "后端开发"], source="new.json")
    with pytest.raises(ModelError, match="Retrain") as err:
        HybridModel.load(sample_model_dir, other, config)
    assert "new.json" in str(err.value)


@pytest.mark.parametrize("name", [*artifacts.FILES, "manifest.json"])
def test_a_flipped_byte_in_any_file_is_refused(copy, cache_dir, name):
    path = copy / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    assert_refused(copy, cache_dir, name)


@pytest.mark.parametrize("name", [*artifacts.FILES, "manifest.json"])
def test_a_missing_file_is_refused(copy, cache_dir, name):
    (copy / name).unlink()
    assert_refused(copy, cache_dir, name)


def test_an_extra_file_is_refused(copy, cache_dir):
    (copy / "pipeline.joblib").write_bytes(pickle.dumps(Planted()))
    assert_refused(copy, cache_dir, "pipeline.joblib")


def test_an_entry_removed_from_the_manifest_is_refused(copy, cache_dir):
    """The file set is the code's, not the manifest's: dropping a file's entry (once the way
    to swap in an unchecked file) no longer skips its check."""
    (copy / "classifier.pickle").write_bytes(pickle.dumps(Planted()))
    rewrite_manifest(copy, lambda m: m["files"].pop("classifier.pickle"))
    assert_refused(copy, cache_dir, "manifest.json")


FIELDS = ["format_version", "taxonomy_fingerprint", "categories", "embedder", "embedder_id",
          "versions", "metrics", "training", "created_at", "files", "digest"]


def _changed(value):
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):
        return [*value, "黑客攻击"]
    return {**value, "x": 1}


@pytest.mark.parametrize("field", FIELDS)
def test_any_manifest_field_edited_is_refused(copy, cache_dir, field):
    rewrite_manifest(copy, lambda m: m.__setitem__(field, _changed(m[field])), digest=False)
    assert_refused(copy, cache_dir, "manifest.json")


@pytest.mark.parametrize("field", FIELDS)
def test_any_manifest_field_removed_is_refused(copy, cache_dir, field):
    rewrite_manifest(copy, lambda m: m.pop(field), digest=field != "digest")
    assert_refused(copy, cache_dir, "manifest.json")


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'"a manifest"', b"\xff\xfe",
                                     b"[" * 100_000])
def test_a_malformed_manifest_is_refused_by_name(copy, cache_dir, content):
    (copy / "manifest.json").write_bytes(content)
    assert_refused(copy, cache_dir, "manifest.json")


PLANTED = {
    "os.system": Planted(),
    "builtins.eval": type("Eval", (), {"__reduce__": lambda self: (
        eval, (f"open({str(MARKER)!r}, 'w')",))})(),
    "numpy.memmap": type("Memmap", (), {"__reduce__": lambda self: (
        np.memmap, (str(MARKER), "uint8", "w+", 0, (1,)))})(),
    "test_artifacts.Planted": {"model": Planted.__new__(Planted)},
}


@pytest.mark.parametrize("name", ["classifier.pickle", "tagger.pickle", "segmenter.pickle"])
@pytest.mark.parametrize("planted", list(PLANTED))
def test_a_planted_pickle_with_its_checksum_updated_runs_nothing(copy, cache_dir, name,
                                                                 planted):
    (copy / name).write_bytes(pickle.dumps(PLANTED[planted]))
    rewrite_manifest(copy, rehash(copy, name))
    assert_refused(copy, cache_dir, name, "refusing")


def test_the_allowlist_is_what_models_are_made_of(sample_model, multi_label_classifier,
                                                  sample_taxonomy, config):
    """Every global a trained model's pickles refer to is allowed, and nothing more is."""
    seen: set[str] = set()

    class Tracer(pickle.Unpickler):
        def find_class(self, module, name):
            seen.add(f"{module}.{name}")
            return super().find_class(module, name)

    zero_shot = ZeroShotClassifier(TaxonomyPrior(sample_taxonomy,
                                                 HybridModel.embedder_for(config))).fit()
    for obj in (sample_model.classifier, sample_model.tagger, sample_model.segmenter,
                multi_label_classifier, zero_shot):
        Tracer(io.BytesIO(pickle.dumps(obj, protocol=5))).load()
    other_numpy = {n.replace("numpy._core.", "numpy.core.") for n in seen}
    assert seen <= artifacts.ALLOWED
    assert artifacts.ALLOWED - seen <= other_numpy - seen


@pytest.fixture(scope="module")
def multi_label_classifier():
    X = synthetic_features(np.random.default_rng(0), 60)
    Y = np.zeros((60, 3), dtype=int)
    Y[:, 0] = [x.embedding[0] > 0 for x in X]
    Y[:, 1] = [x.embedding[1] > 0 for x in X]
    Y[:, 2] = 1 - Y[:, 0]
    return CategoryClassifier(["a", "b", "c"]).fit(X, Y)


def test_a_swapped_taxonomy_is_refused_however_well_disguised(copy, cache_dir, sample_model_dir):
    names = json.loads((sample_model_dir / "taxonomy.json").read_text(encoding="utf-8"))
    evil = [{"name": n} for n in ["黑客攻击", "毒品", *[c["name"] for c in names[2:]]]]
    (copy / "taxonomy.json").write_text(json.dumps(evil, ensure_ascii=False), encoding="utf-8")
    assert_refused(copy, cache_dir, "taxonomy.json")  # checksum
    rewrite_manifest(copy, rehash(copy, "taxonomy.json"))
    assert_refused(copy, cache_dir, "taxonomy.json")  # fingerprint recomputed
    tax = parse_taxonomy(evil)

    def disguise(manifest: dict) -> None:
        manifest["taxonomy_fingerprint"] = tax.fingerprint
        manifest["categories"] = tax.names
    rewrite_manifest(copy, disguise)
    assert_refused(copy, cache_dir, "classifier")  # the classifier's own categories


def test_a_corrupt_model_exits_4_with_worker_processes_too(copy, cache_dir, tmp_path):
    (copy / "tagger.pickle").write_bytes(b"not a model")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, [
        "--quiet", "--cache-dir", str(cache_dir), "tag-file",
        str(data.path("sample_unseen.jsonl")), str(out), "--model", str(copy), "--workers", "2"],
        env={"MONGODB_URI": ""})
    assert result.exit_code == Exit.MODEL, result.output
    assert "tagger.pickle" in result.output and "Traceback" not in result.output


def test_a_signed_model_loads_only_with_its_key(sample_model, tmp_path, cache_dir):
    signed = tmp_path / "signed"
    sample_model.save(signed, key="s3cret")
    assert (signed / "manifest.sig").exists()
    assert predict(signed, cache_dir, {"HYBRID_MODEL_KEY": "s3cret"}).exit_code == 0
    assert_refused(signed, cache_dir, "signature", env={"HYBRID_MODEL_KEY": "other"})
    rewrite_manifest(signed, lambda m: m["metrics"].__setitem__("accuracy_top1", 1.0))
    assert_refused(signed, cache_dir, "signature", env={"HYBRID_MODEL_KEY": "s3cret"})
    unsigned = tmp_path / "unsigned"
    sample_model.save(unsigned)
    assert_refused(unsigned, cache_dir, "manifest.sig", env={"HYBRID_MODEL_KEY": "s3cret"})


def test_training_never_overwrites_a_directory_that_is_not_a_model(sample_model, tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ModelError, match="not a model directory"):
        sample_model.save(precious)
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"
    model = tmp_path / "model"
    sample_model.save(model)
    sample_model.save(model)  # a model directory is replaced whole
    assert {p.name for p in model.iterdir()} == {*artifacts.FILES, "manifest.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_saving_through_a_link_replaces_its_target_and_leaves_no_debris(sample_model, tmp_path,
                                                                        config):
    """`train --out prod` where prod -> real_model: the link stays, real_model is the new
    model, nothing is left beside them; a link to something not a model is refused."""
    sample_model.save(tmp_path / "real_model")
    (tmp_path / "prod").symlink_to("real_model")
    sample_model.save(tmp_path / "prod")
    assert (tmp_path / "prod").is_symlink()
    assert HybridModel.load(tmp_path / "prod", config=config).taxonomy.names == \
        sample_model.taxonomy.names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prod", "real_model"]
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    (tmp_path / "file").symlink_to("notes.txt")
    with pytest.raises(ModelError, match="not a model directory"):
        sample_model.save(tmp_path / "file")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "notes.txt", "prod",
                                                          "real_model"]
