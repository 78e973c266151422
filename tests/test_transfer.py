"""hybrid.mongo.transfer: import and export round-trip the documents."""

from __future__ import annotations

import io
import json

from bson import ObjectId
from helpers import ARTICLES

from hybrid.mongo.store import Store
from hybrid.mongo.transfer import export, from_extended_json


def test_import_upserts_and_export_round_trips(store: Store, tmp_path):
    assert store.import_records(ARTICLES, manual=True) == {}
    assert store.articles.find_one({"_id": "a2"})["hybrid"] == {"source": "manual"}
    assert "hybrid" not in store.articles.find_one({"_id": "a1"})  # no labels: not manual
    store.articles.update_one({"_id": "a1"}, {"$set": {"hybrid.content_hash": "h"}})
    store.import_records([{"id": "a1", "title": "Redis 持久化（修订）"}, {"title": "no id"}])
    a1 = store.articles.find_one({"_id": "a1"})
    assert a1["title"] == "Redis 持久化（修订）" and a1["content"] == "RDB 与 AOF"
    assert a1["hybrid"] == {"content_hash": "h"}  # fields absent from the file are kept
    assert isinstance(store.articles.find_one({"title": "no id"})["_id"], ObjectId)

    out = io.StringIO()
    assert export(store, out) == 3
    before = list(store.articles.find(sort=[("_id", 1)]))
    store.articles.delete_many({})
    records = [from_extended_json(json.loads(line)) for line in out.getvalue().splitlines()]
    assert store.import_records(records) == {}
    assert list(store.articles.find(sort=[("_id", 1)])) == before
