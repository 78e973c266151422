"""The audit sheet of `hybrid bootstrap --audit`: 20 of the teacher's articles for a person to
label, through a review file (CSV for a spreadsheet, or JSONL), and read back.

The sheet is blind: it suggests nothing, neither the teacher's answer nor the model's, so
that the person's labels measure the teacher instead of echoing it. Read back, its filled-in
`categories` are checked against the taxonomy as any review file's are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from hybrid.ingest.article import Article
from hybrid.labels.review import Row, read_corrections, write_rows
from hybrid.taxonomy import Taxonomy

AUDIT_SIZE = 20


def write_sheet(path: str | Path, articles: Sequence[Article], ids: str, seed: int = 0,
                inputs: Iterable[str | Path | None] = ()) -> int:
    """`AUDIT_SIZE` of `articles`, drawn at random, to `path`; returns how many."""
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(articles), min(AUDIT_SIZE, len(articles)), replace=False))
    write_rows([Row(articles[i].id, articles[i].title, [], 0.0, {}, []) for i in chosen], path,
               ids, inputs)
    return len(chosen)


def read_sheet(path: str | Path, taxonomy: Taxonomy, max_categories: int
               ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(the person's categories by article, errors by article) of a filled-in sheet."""
    corrections, errors = read_corrections(path, taxonomy, max_categories)
    return {c.id: c.categories for c in corrections}, errors
