"""Turn a raw record (JSONL line or MongoDB document) into a validated `Article`.

Bad input raises `ArticleError` naming the article and the field, so a batch can record
it and move on; recoverable oddities (missing description, invalid surrogates, a huge
body) give a best-effort article with `flags` saying what was done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hybrid.config import Config
from hybrid.errors import UsageError
from hybrid.ingest.ids import id_key, shown


class ArticleError(UsageError, ValueError):
    def __init__(self, article_id: str, field_name: str, message: str) -> None:
        super().__init__(f"article {shown(article_id)!r}, field {field_name!r}: {message}")
        self.article_id = article_id
        self.field = field_name
        self.detail = message

    def __reduce__(self) -> tuple:
        """Rebuilt from its own arguments: it crosses process boundaries in worker pools."""
        return type(self), (self.article_id, self.field, self.detail)


@dataclass
class Article:
    id: str
    title: str
    description: str
    content: str
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    published: date | None = None  # its date, if the record gives one readably


def read_field(record: dict[str, Any], name: str) -> Any:
    """`record[name]`; for a dotted name that is no key of `record`, the nested field it
    names, as MongoDB reads it (`body.html`: the `html` field of the sub-document `body`).
    None if absent. A list on the way is returned as found (it is no text, and says so)."""
    if name in record or "." not in name:
        return record.get(name)
    value: Any = record
    for part in name.split("."):
        if isinstance(value, list):
            return value
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text_field(raw: dict[str, Any], name: str, article_id: str, max_chars: int,
                flags: list[str]) -> str:
    value = read_field(raw, name)
    if value is None:
        flags.append(f"missing:{name}")
        return ""
    if not isinstance(value, str):
        raise ArticleError(article_id, name, f"expected text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
        flags.append(f"invalid_unicode:{name}")
    if len(value) > max_chars:
        value = value[:max_chars]
        flags.append(f"truncated:{name}")
    return value


def _label_list(raw: dict[str, Any], name: str, article_id: str) -> list[str]:
    value = read_field(raw, name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArticleError(article_id, name, "expected a list of strings")
    return [v.strip() for v in value if v.strip()]


def publication_date(value: Any) -> date | None:
    """A record's date as a day: a BSON date, or ISO 8601 text ("2023-07-14",
    "2025-03-04T09:21:00+08:00", "2023/07/14"). Anything else is no date: only growth over
    time and dead categories read it, and an odd one must not fail the article."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("/", "-")).date()
    except ValueError:
        return None


def article_id_of(raw: Any, id_field: str = "id") -> str:
    """The record's id as text: its id field, else its MongoDB `_id` as `id_key` writes it
    (with its type). Whole: it is the article's identity; messages cut it (`ids.shown`)."""
    if isinstance(raw, dict):
        for key in (id_field, "_id", "id"):
            value = raw.get(key)
            if value is None:
                continue
            if key == "_id":
                return id_key(value)
            if isinstance(value, dict | list | tuple):
                return f"<{type(value).__name__} id>"  # not an id to echo back
            return str(value)
    return "<unknown>"


def parse_article(raw: Any, config: Config | None = None, with_labels: bool = True) -> Article:
    """`with_labels=False` when predicting: labels about to be replaced can't fail an article."""
    config = config or Config()
    if isinstance(raw, ArticleError):  # a record that did not even parse (`read_jsonl`)
        raise raw
    article_id = article_id_of(raw, config.id_field)
    if not isinstance(raw, dict):
        raise ArticleError(article_id, "<record>", f"expected an object, got {type(raw).__name__}")
    flags: list[str] = []
    title = _text_field(raw, config.title_field, article_id, config.max_field_chars, flags)
    description = _text_field(raw, config.description_field, article_id,
                              config.max_field_chars, flags)
    content = _text_field(raw, config.content_field, article_id, config.max_field_chars, flags)
    if not (title.strip() or description.strip() or content.strip()):
        raise ArticleError(article_id, config.content_field, "article has no text at all")
    return Article(
        id=article_id,
        title=title,
        description=description,
        content=content,
        categories=_label_list(raw, config.categories_field, article_id) if with_labels else [],
        tags=_label_list(raw, config.tags_field, article_id) if with_labels else [],
        flags=flags,
        published=publication_date(read_field(raw, config.date_field)),
    )
