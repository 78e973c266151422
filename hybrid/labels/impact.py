"""How many stored articles carry each category a list change touches: in a labelled JSONL
file, or in a MongoDB collection (with how many of those are manual)."""

from __future__ import annotations

from pathlib import Path

from hybrid.config import Config
from hybrid.ingest.records import read_jsonl
from hybrid.mongo.store import Store
from hybrid.taxonomy.change import Migration, impact


def affected(migration: Migration, config: Config, data: str | Path | None = None
             ) -> dict[str, dict[str, int]] | None:
    """Counts from `data`, else from MongoDB if a URI is configured, else None."""
    if data is not None:
        return impact(migration, (r.get(config.categories_field) or [] for r in read_jsonl(data)
                                  if isinstance(r, dict)))
    if not config.mongo_uri:
        return None
    with Store(config) as store:
        return {name: store.count_labelled(migration.stored_as(name))
                for name in migration.changed}
