"""Articles between JSONL files and a collection, as MongoDB relaxed Extended JSON (what
mongoexport writes), so `export` then `import_file` gives back the same documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bson import json_util
from more_itertools import chunked

from hybrid.ingest.article import ArticleError, article_id_of
from hybrid.ingest.records import read_jsonl
from hybrid.mongo.store import Store


@dataclass
class ImportOutcome:
    imported: int = 0
    errors: list[str] = field(default_factory=list)  # one message per article that failed


def from_extended_json(value: Any) -> Any:
    """Turn Extended JSON values of a parsed record ({"$oid": ...}, {"$date": ...}) into BSON
    types, bottom-up, as `json_util.loads` would."""
    if isinstance(value, dict):
        return json_util.object_hook({k: from_extended_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return [from_extended_json(v) for v in value]
    return value


def import_file(store: Store, path: str | Path, manual: bool = False,
                progress: Callable[[int], object] = lambda n: None) -> ImportOutcome:
    """Upsert the articles of a JSONL file by _id, else the id field (plain or Extended JSON).
    Fields absent from the file, ours included, are kept; a bad record is reported, not
    imported, and the rest go on."""
    outcome = ImportOutcome()
    for batch in chunked(read_jsonl(path), store.config.batch_size):
        records = [from_extended_json(raw) for raw in batch if isinstance(raw, dict)]
        errors = [str(raw) if isinstance(raw, ArticleError) else f"not an object: {raw!r:.80}"
                  for raw in batch if not isinstance(raw, dict)]
        errors += [f"article {article_id_of(records[i], store.config.id_field)!r}: {message}"
                   for i, message in store.import_records(records, manual).items()]
        outcome.imported += len(batch) - len(errors)
        outcome.errors += errors
        progress(len(batch))
    return outcome


def export(store: Store, out: TextIO, progress: Callable[[int], object] = lambda n: None) -> int:
    """Every document of the collection as one line of relaxed Extended JSON."""
    count = 0
    for article in store.articles.find({}, sort=[("_id", 1)]):
        out.write(json_util.dumps(article, json_options=json_util.RELAXED_JSON_OPTIONS,
                                  ensure_ascii=False) + "\n")
        count += 1
        progress(1)
    return count
