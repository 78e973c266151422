"""Records in and out as JSON: streamed from a JSONL file, with a line that does not parse
as an error naming it (never an exception that stops the batch), and written back so that
any id round-trips, even one that is not valid Unicode."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hybrid.config import Config
from hybrid.ingest.article import Article, ArticleError, parse_article


def parse_json(text: str, where: str) -> Any:
    """The JSON value in `text`, or an `ArticleError` naming `where` for anything that is not
    JSON Python can hold: broken syntax, nesting past the recursion limit, an integer past
    the 4,300-digit limit."""
    try:
        return json.loads(text)
    except RecursionError:
        return ArticleError(where, "<json>", "nested too deeply to parse")
    except ValueError as exc:  # JSONDecodeError, and integers past the digit limit
        return ArticleError(where, "<json>", str(exc)[:200])


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any] | ArticleError]:
    """Stream records; a line that is not JSON becomes an `ArticleError`, not an exception.
    Bytes that are not UTF-8 survive as surrogate escapes (an article's text fields are then
    repaired and flagged; an id keeps them, so it can be named exactly)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield parse_json(line, f"line {lineno}")


def read_one(source: str | Path) -> Any:
    """One JSON value from a file, or from stdin when `source` is "-", read the same way
    either way; an `ArticleError` when it does not parse."""
    raw = sys.stdin.buffer.read() if str(source) == "-" else Path(source).read_bytes()
    return parse_json(raw.decode("utf-8", "surrogateescape"), str(source))


def to_json(value: Any, indent: int | None = None) -> str:
    """`value` as JSON (one line unless `indent`): UTF-8 text where it can be, ASCII escapes
    where a string holds a lone surrogate (an id read from invalid bytes), so writing it
    never fails and the id round-trips."""
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, indent=indent, default=str)
    return text


def load_articles(path: str | Path, config: Config | None = None) -> list[Article]:
    """Load a labelled file for training or evaluation; any bad record is a hard error."""
    articles = []
    for raw in read_jsonl(path):
        if isinstance(raw, ArticleError):
            raise raw
        articles.append(parse_article(raw, config))
    return articles
