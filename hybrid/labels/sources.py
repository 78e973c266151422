"""Labelled articles for training and evaluation: a JSONL file, or the labels of a MongoDB
collection: people's (manual), a teacher LLM's (`hybrid.teacher`), or both, people's winning.
"""

from __future__ import annotations

from pathlib import Path

from hybrid.config import Config
from hybrid.errors import UsageError
from hybrid.ingest.article import Article, parse_article
from hybrid.ingest.ids import id_key
from hybrid.ingest.records import load_articles
from hybrid.labels.ledger import StoreLedger, labels_of
from hybrid.learn.model import zero_shot_reason
from hybrid.mongo.store import Store
from hybrid.taxonomy import Taxonomy

LABEL_SOURCES = ("manual", "llm")


def parse_sources(label_source: str) -> set[str]:
    """"manual", "llm" or "manual,llm"."""
    wanted = {part.strip() for part in label_source.split(",") if part.strip()}
    if not wanted or wanted - set(LABEL_SOURCES):
        raise UsageError(f"--label-source takes {', '.join(LABEL_SOURCES)} or both "
                         f"(manual,llm), not {label_source!r}")
    return wanted


def labelled_articles(config: Config, data: str | Path | None = None,
                      label_source: str | None = None, some: bool = True) -> list[Article]:
    """From `data`, or with `label_source` from the configured collection (`some`: there
    must be at least one)."""
    if (data is None) == (label_source is None):
        raise UsageError("give either --data FILE or --label-source manual,llm")
    if data is not None:
        return load_articles(data, config)
    wanted = parse_sources(label_source)
    with Store(config) as store:
        records = {id_key(r["_id"]): r for r in store.label_records()}
    labels = labels_of(records.values(), config)
    articles = [parse_article({**records[key], config.categories_field: label.categories,
                               config.tags_field: label.tags
                               or records[key].get(config.tags_field)}, config)
                for key, label in labels.items() if label.source in wanted and label.categories]
    if not articles and some:
        raise UsageError(f"no articles with {' or '.join(sorted(wanted))} labels in "
                         f"{store.where}")
    return articles


def training_articles(config: Config, taxonomy: Taxonomy, data: str | Path | None = None,
                      label_source: str | None = None) -> list[Article]:
    """What `hybrid train` learns from: `labelled_articles`; from a collection whose labels
    train no classifier (on day one it has none), those and its other articles unlabelled, as
    a JSONL file of the site's articles gives them: a zero-shot model's tags come from the
    site's text."""
    if data is not None or label_source is None:
        return labelled_articles(config, data, label_source)
    labelled = labelled_articles(config, label_source=label_source, some=False)
    if zero_shot_reason([taxonomy.map_labels(a.categories)[0] for a in labelled],
                        taxonomy) is None:
        return labelled
    known = {a.id for a in labelled}
    with Store(config) as store:
        articles = labelled + [a for a in StoreLedger(store).articles() if a.id not in known]
    if not articles:
        raise UsageError(f"no articles to train on in {store.where}")
    return articles


def load_labelled(source: str, config: Config) -> list[Article]:
    """A labelled JSONL file, or a MongoDB URI (its collection's manual labels)."""
    if source.startswith(("mongodb://", "mongodb+srv://")):
        return labelled_articles(config.with_overrides(mongo_uri=source), label_source="manual")
    return labelled_articles(config, data=source)
