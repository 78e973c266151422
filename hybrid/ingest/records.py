"""Records from a JSONL file: streamed, with a broken line as an error, not an exception."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hybrid.config import Config
from hybrid.ingest.article import Article, ArticleError, parse_article


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any] | ArticleError]:
    """Stream records; a line that is not JSON becomes an `ArticleError`, not an exception."""
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                yield ArticleError(f"line {lineno}", "<json>", str(exc))


def read_one(source: str | Path) -> Any:
    """One JSON value from a file, or from stdin when `source` is "-"."""
    raw = sys.stdin.read() if str(source) == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(raw)


def load_articles(path: str | Path, config: Config | None = None) -> list[Article]:
    """Load a labelled file for training or evaluation; any bad record is a hard error."""
    articles = []
    for raw in read_jsonl(path):
        if isinstance(raw, ArticleError):
            raise raw
        articles.append(parse_article(raw, config))
    return articles
