"""The articles a suggestion reads: a JSONL file, or every article of the collection.

Labels are the ones people gave (the file's, or the collection's manual and never-retagged
ones): what the model labelled itself is predicted again, not counted as evidence. A record
that is no article is counted and left out; it does not stop the suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.config import Config
from hybrid.ingest.article import Article, ArticleError, parse_article
from hybrid.ingest.records import read_jsonl
from hybrid.mongo.fields import STATE
from hybrid.mongo.marks import is_manual
from hybrid.mongo.store import Store


@dataclass
class Articles:
    articles: list[Article]
    where: str
    failed: list[str] = field(default_factory=list)  # why each left-out record is no article


def read_articles(config: Config, data: str | Path | None = None) -> Articles:
    """From `data`, else from the configured collection."""
    if data is not None:
        return _collect(read_jsonl(data), config, str(data))
    with Store(config) as store:
        records = (people_labels(article, owned, config)
                   for article, owned in store.scan(extra=[config.date_field]))
        return _collect(records, config, store.where)


def people_labels(article: dict[str, Any], owned: dict[str, Any], config: Config
                  ) -> dict[str, Any]:
    """The article with the labels and tags a person gave it: manual ones, or the author's
    where no run has written any. The model's own are no evidence: its tags would join
    groups of different subjects (`join`), and are asked again where a group is named."""
    state = owned.get(STATE)
    people = is_manual(state) or not state
    return {**article, config.categories_field: owned.get(config.categories_field)
            if people else None, config.tags_field: owned.get(config.tags_field)
            if people else None}


def _collect(records: Any, config: Config, where: str) -> Articles:
    out = Articles([], where)
    for record in records:
        try:
            out.articles.append(parse_article(record, config))
        except ArticleError as exc:
            out.failed.append(str(exc))
    return out
