"""A featurize worker's segmenters, kept across its jobs: each job of training's featurizing
arrives pickled, and rebuilding two jieba dictionaries a job cost CPU and left freed native
heap in the worker's RSS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybrid.ingest.segment import Segmenter

# a featurize worker's segmenters, by their parameters: a training's are its main one and
# the two halves' candidate ones (`model._training_featurizers`)
_segmenters: dict[tuple[Any, ...], Segmenter] = {}
_MAX_SEGMENTERS = 4


def built_here(segmenter: Segmenter) -> Segmenter:
    """The segmenter with `segmenter`'s parameters this process already built, else
    `segmenter`, kept for the next job. A job's segmenters arrive pickled, without their jieba
    dictionaries: rebuilt for each of a worker's jobs, they took ~0.4 CPU-seconds a job, and
    their freed native heap stayed in the worker's RSS (it made training's peak, at the end
    of featurizing)."""
    key = (_file_state(segmenter.user_dict), _file_state(segmenter.user_stopwords),
           tuple(segmenter.vocabulary))
    if key not in _segmenters and len(_segmenters) >= _MAX_SEGMENTERS:
        _segmenters.clear()
    return _segmenters.setdefault(key, segmenter)


def _file_state(path: str | None) -> tuple[str, int, int] | None:
    """A user file by its path and its current version: a pool's workers outlive one
    training, and an edited dictionary must not be read from an old segmenter."""
    if path is None:
        return None
    stat = Path(path).stat()
    return path, stat.st_mtime_ns, stat.st_size
