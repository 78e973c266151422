"""Every file or model directory the project writes: never onto one of its inputs, and
written whole or not at all.

A file is written to a temporary file in its destination's folder, synced to disk, and
renamed over the destination: a reader sees the old file or the new one, never half of one,
and a job that fails or is interrupted leaves the old file as it was. A destination that is
a symbolic link is written through: its target is replaced and the link kept. "-" is
standard output. (Click's `open_file(atomic=True)` renames too, but it does not sync before
the rename, so a crash can leave an empty file where the old one was, and it puts the
temporary file beside the link, not beside the target it renames over.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from hybrid.errors import UsageError

STDOUT = "-"
PathLike = str | os.PathLike[str]


def _same(a: PathLike, b: PathLike) -> bool:
    """One file, through any link, hard link or `..`; a path not there yet by its name."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_inputs(out: PathLike | None, inputs: Iterable[PathLike | None]) -> None:
    """A usage error (exit 2) when `out` is one of `inputs`, or inside an input folder (a
    model's): writing it would destroy what the job reads."""
    if out is None or str(out) == STDOUT:
        return
    for given in inputs:
        if given is None or str(given) == STDOUT:
            continue
        if _same(out, given):
            how = "" if str(out) == str(given) else f" (both are {os.path.realpath(out)})"
            raise UsageError(f"the output {out} is the input {given}{how}: writing it would "
                             "destroy the input; choose another output file")
        if os.path.isdir(given) and Path(os.path.realpath(out)).is_relative_to(
                os.path.realpath(given)):
            raise UsageError(f"the output {out} is inside the input folder {given}; choose "
                             "another output file")


def _mode(target: Path) -> int:
    """The permissions the file would have had if written in place."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def open_output(path: PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = None, inputs: Iterable[PathLike | None] = (),
                errors: str | None = None, staging: PathLike | None = None
                ) -> Iterator[IO[Any]]:
    """`open(path, mode)` for writing, put in place only when the block ends without an
    error; refused when `path` is one of `inputs`. The temporary file is written in
    `staging` (a folder on the same file system) when the destination's own folder must
    never hold anything else, as a model directory must not."""
    refuse_inputs(path, inputs)
    binary = "b" in mode
    if str(path) == STDOUT:
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(mode, encoding=None if binary else encoding,
                                     newline=None if binary else newline, errors=errors,
                                     dir=staging or target.parent,
                                     prefix=f".{target.name}.", suffix=".tmp",
                                     delete=False) as fh:
        try:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            fh.close()
            os.unlink(fh.name)
            raise
    os.chmod(fh.name, _mode(target))
    os.replace(fh.name, target)


def write_text(path: PathLike, text: str, inputs: Iterable[PathLike | None] = (),
               staging: PathLike | None = None) -> Path:
    """`Path(path).write_text(text)`, whole or not at all."""
    with open_output(path, inputs=inputs, staging=staging) as fh:
        fh.write(text)
    return Path(path)


@contextlib.contextmanager
def output_dir(directory: PathLike) -> Iterator[Path]:
    """A new empty folder to fill, which takes `directory`'s place (its target's, if it is a
    link) when the block ends without an error, and is removed otherwise. The old folder
    is removed once the new one is in place; nothing is left beside it either way."""
    target = Path(os.path.realpath(directory))
    staging = target.with_name(f".{target.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if not target.exists():
            staging.rename(target)
            return
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        try:
            staging.rename(target)
        except BaseException:
            old.rename(target)
            raise
        shutil.rmtree(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
