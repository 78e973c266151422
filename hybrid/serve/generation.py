"""One model as the service serves it: a pinned copy of a model directory, verified.

`train --out` replaces a model directory while the service runs (the nightly retrain), so
workers never load from it directly: the files are hard-linked (copied across file
systems) into a private directory first, and that copy is verified (signature, checksums,
file set, and the taxonomy the service was started with). Every worker of a generation,
including one started after a crash, loads the same bytes, whatever happens to the
source meanwhile. A file that `train` later replaces is a new inode: the link keeps the old.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.batch.processes import alive
from hybrid.errors import ModelError
from hybrid.learn import artifacts
from hybrid.taxonomy import Taxonomy


@dataclass
class Generation:
    number: int
    source: str  # the model directory as given
    path: Path  # the pinned copy the workers load
    manifest: dict[str, Any]
    taxonomy: Taxonomy

    def summary(self) -> dict[str, Any]:
        """What every answer says about the model that gave it."""
        m = self.manifest
        return {"taxonomy_fingerprint": m["taxonomy_fingerprint"],
                "created_at": m["created_at"], "generation": self.number}

    def describe(self) -> dict[str, Any]:
        """/v1/model: the manifest a person needs, without the per-file checksums."""
        m = self.manifest
        return {"source": self.source, "generation": self.number,
                "taxonomy_fingerprint": m["taxonomy_fingerprint"],
                "categories": self.taxonomy.to_json(), "created_at": m["created_at"],
                "embedder": m["embedder"], "embedder_id": m["embedder_id"],
                "zero_shot": bool(m.get("zero_shot")), "metrics": m["metrics"],
                "training": {k: v for k, v in m["training"].items() if k != "label_counts"},
                "label_counts": m["training"].get("label_counts", {}),
                "versions": m["versions"], "digest": m["digest"]}

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


PREFIX = "hybrid-serve-"


def sweep() -> None:
    """Remove the pinned copies of servers that are gone (killed before they could): a
    copy is named after its server's process id."""
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        pid = path.name.removeprefix(PREFIX).split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def pin(source: str | Path, number: int, taxonomy: Taxonomy | None,
        key: str | None) -> Generation:
    """A verified copy of `source`; `ModelError` (the copy removed) when it is corrupt,
    tampered with, unsigned under a key, or for another taxonomy than `taxonomy`."""
    source = Path(source)
    if not source.is_dir():
        raise ModelError(f"{source} is not a directory")
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{number}-"))
    try:
        for entry in source.iterdir():
            if entry.is_file() and not entry.is_symlink():
                _link_or_copy(entry, path / entry.name)
            else:  # verify refuses anything but the model's files; say which
                (path / entry.name).touch()
        manifest = artifacts.verify(path, taxonomy, key)
        stored = artifacts.read_taxonomy(path)
    except ModelError as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise ModelError(str(exc).replace(str(path), str(source))) from exc
    except OSError as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise ModelError(f"{source}: cannot read the model ({exc})") from exc
    return Generation(number, str(source), path, manifest, stored)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a copy pins it as well
        shutil.copy2(src, dst)
