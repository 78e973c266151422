"""Labelled articles for training and evaluation: a JSONL file, or the manual labels of a
MongoDB collection (the only stored labels that are people's, not the model's)."""

from __future__ import annotations

from pathlib import Path

from hybrid.config import Config
from hybrid.errors import UsageError
from hybrid.ingest.article import Article, parse_article
from hybrid.ingest.records import load_articles
from hybrid.mongo.store import Store


def labelled_articles(config: Config, data: str | Path | None = None,
                      label_source: str | None = None) -> list[Article]:
    """From `data`, or with `label_source="manual"` from the configured collection."""
    if (data is None) == (label_source is None):
        raise UsageError("give either --data FILE or --label-source manual")
    if data is not None:
        return load_articles(data, config)
    with Store(config) as store:
        records = store.manual_records()
    if not records:
        raise UsageError(f"no articles with manual labels in {store.where}")
    return [parse_article(record, config) for record in records]


def load_labelled(source: str, config: Config) -> list[Article]:
    """A labelled JSONL file, or a MongoDB URI (its collection's manual labels)."""
    if source.startswith(("mongodb://", "mongodb+srv://")):
        return labelled_articles(config.with_overrides(mongo_uri=source), label_source="manual")
    return labelled_articles(config, data=source)
