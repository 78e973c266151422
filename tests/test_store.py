"""hybrid.mongo.store against a real wire-protocol server (SecantusDB, or $MONGODB_TEST_URI)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from bson import Decimal128
from helpers import ARTICLES, BSON_IDS, read

from hybrid.config import Config
from hybrid.errors import UsageError
from hybrid.ingest.ids import id_key
from hybrid.mongo.store import Store, Write, content_hash


def test_content_hash_covers_exactly_the_configured_text_fields():
    config = Config(content_field="body")
    base = {"_id": 1, "title": "t", "body": "b", "categories": ["x"], "hybrid": {}}
    same = {**base, "categories": ["y"], "other": 1, "content": "ignored"}
    assert content_hash(base, config) == content_hash(same, config)
    assert content_hash(base, config) != content_hash({**base, "body": "b2"}, config)
    assert content_hash(base, config) != content_hash({**base, "body": 42}, config)
    missing, null = dict(base), {**base, "description": None}
    assert content_hash(missing, config) == content_hash(null, config)


def test_write_is_guarded_by_the_text_read_and_the_manual_marks(store: Store):
    store.import_records([*ARTICLES, {"id": "a3", "title": "t3", "content": "c3"},
                          {"id": "a4", "title": "t4", "content": "c4"}])
    store.articles.update_one({"_id": "a1"}, {"$set": {"hybrid": {"error": "old", "note": 1}}})
    reads = {i: read(store, i) for i in ("a1", "a2", "a3", "a4")}
    store.articles.update_one({"_id": "a2"}, {"$set": {"content": "edited meanwhile"}})
    store.articles.update_one({"_id": "a3"}, {"$set": {"hybrid.locked": True}})
    store.articles.update_one({"_id": "a4"}, {"$set": {"hybrid.source": "manual"}})
    writes = [Write(reads[i], {"content_hash": "h", "source": "model"}, ["数据库"], ["redis"])
              for i in reads]
    outcome = store.write(writes)
    assert (outcome.written, outcome.conflicts, outcome.errors) == (1, 3, {})
    a1 = store.articles.find_one({"_id": "a1"})
    assert a1["categories"] == ["数据库"] and a1["tags"] == ["redis"]
    assert a1["hybrid"] == {"note": 1, "content_hash": "h", "source": "model"}  # error cleared
    assert store.articles.find_one({"_id": "a2"})["categories"] == ["前端开发"]
    assert "categories" not in store.articles.find_one({"_id": "a3"})
    # the same writes again: idempotent, same counts (what a retry after a lost reply sees)
    assert store.write(writes).written == 1


def test_a_write_the_server_refuses_is_reported_by_index(store: Store):
    store.import_records([{"id": "a1", "title": "t", "hybrid": "not a document"},
                          {"id": "a2", "title": "t"}])
    outcome = store.write([Write(read(store, i), {"content_hash": "h"}, ["x"], [])
                           for i in ("a1", "a2")])
    assert outcome.written == 1 and list(outcome.errors) == [0]


def test_results_collection_gets_labels_and_articles_stay_untouched(mongo_config: Config):
    with Store(replace(mongo_config, results_collection="labels")) as store:
        store.import_records(ARTICLES)
        before = list(store.articles.find())
        store.labels.insert_one({"_id": "a2", "categories": ["前端开发"],
                                 "hybrid": {"source": "manual"}})
        outcome = store.write([Write(read(store, i), {"content_hash": "h"}, ["数据库"], [])
                               for i in ("a1", "a2")])
        assert (outcome.written, outcome.conflicts) == (1, 1)
        assert list(store.articles.find()) == before
        assert store.labels.find_one({"_id": "a1"})["categories"] == ["数据库"]
        assert store.labels.find_one({"_id": "a2"})["categories"] == ["前端开发"]
        owned = {article["_id"]: owned for article, owned in store.scan()}
        assert owned == {
            "a1": {"categories": ["数据库"], "tags": [], "hybrid": {"content_hash": "h"}},
            "a2": {"categories": ["前端开发"], "hybrid": {"source": "manual"}}}
        records = store.label_records()
        assert [(r["_id"], r["title"], r["categories"]) for r in records] == [
            ("a2", "Vue 组件", ["前端开发"])]


def test_scan_is_in_id_order_after_a_checkpoint_with_owned_fields_apart(store: Store):
    store.import_records([{"id": f"a{i:02d}", "title": f"t{i}", "categories": ["x"],
                           "author": "me"} for i in range(20)])
    scanned = list(store.scan(after="a04"))
    assert [a["_id"] for a, _ in scanned] == [f"a{i:02d}" for i in range(5, 20)]
    article, owned = scanned[0]
    assert set(article) == {"_id", "title"} and owned == {"categories": ["x"]}


def test_ranges_cover_the_collection_once_and_a_scan_keeps_to_its_range(store: Store):
    store.import_records([{"id": f"a{i:02}", "title": str(i)} for i in range(20)])
    ranges = store.ranges(None, 8)
    assert ranges == [(None, "a07"), ("a07", "a15"), ("a15", None)]
    assert [a["_id"] for after, until in ranges for a, _ in store.scan(after, until)] == [
        f"a{i:02}" for i in range(20)]
    assert store.ranges("a15", 4) == [("a15", "a19"), ("a19", None)]
    assert [a["_id"] for a, _ in store.scan("a19", None)] == []


def test_every_bson_type_of_id_is_scanned_written_and_found(store: Store):
    """A sub-document or a Decimal128 `_id` is unhashable: ids are compared by `id_key`."""
    store.articles.insert_many([{"_id": i, "title": f"t{n}", "categories": ["old"]}
                                for n, i in enumerate(BSON_IDS)])
    scanned = list(store.scan())
    assert len(scanned) == len(BSON_IDS)
    assert all(owned == {"categories": ["old"]} for _, owned in scanned)
    outcome = store.write([Write(article, {"content_hash": "h"}, ["数据库"], ["redis"])
                           for article, _ in scanned])
    assert (outcome.written, outcome.conflicts, outcome.errors) == (len(BSON_IDS), 0, {})
    store.articles.update_many({}, {"$set": {"hybrid.source": "manual"}})
    labelled = store.label_records()
    assert sorted(id_key(r["_id"]) for r in labelled) == sorted(map(id_key, BSON_IDS))
    for key in (Decimal128("1.5"), {"n": 1}, 1, "1"):
        assert store.find_ids([key]) == [key]


def test_every_bson_type_of_id_works_with_a_results_collection(mongo_config: Config):
    with Store(replace(mongo_config, results_collection="labels")) as store:
        store.articles.insert_many([{"_id": i, "title": "t"} for i in BSON_IDS])
        scanned = list(store.scan())
        outcome = store.write([Write(a, {"content_hash": "h"}, ["数据库"], [])
                               for a, _ in scanned])
        assert outcome.written == len(BSON_IDS)
        assert all(owned["categories"] == ["数据库"] for _, owned in store.scan())


def test_a_dotted_field_reads_the_nested_field_and_guards_the_write_with_it(
        mongo_config: Config):
    config = replace(mongo_config, content_field="body.html", categories_field="meta.cats")
    with Store(config) as store:
        store.articles.insert_many([
            {"_id": "a", "title": "t", "body": {"html": "<p>Redis</p>", "lang": "zh"},
             "meta": {"author": "me", "cats": ["old"]}},
            {"_id": "b", "title": "t", "body": {"html": "<p>Vue</p>"}},
            {"_id": "c", "title": "t", "body": "no sub-document"}])
        scanned = {a["_id"]: (a, owned) for a, owned in store.scan()}
        assert scanned["a"][0]["body"] == {"html": "<p>Redis</p>"}  # read, not more
        assert scanned["a"][1] == {"meta.cats": ["old"]}
        assert content_hash(scanned["a"][0], config) != content_hash(scanned["b"][0], config)
        store.articles.update_one({"_id": "b"}, {"$set": {"body.html": "edited meanwhile"}})
        outcome = store.write([Write(a, {"content_hash": "h"}, ["数据库"], ["redis"])
                               for a, _ in scanned.values()])
        assert (outcome.written, outcome.conflicts) == (2, 1)  # b changed since it was read
        a = store.articles.find_one({"_id": "a"})
        assert a["meta"] == {"author": "me", "cats": ["数据库"]} and a["tags"] == ["redis"]
        assert store.articles.find_one({"_id": "c"})["meta"] == {"cats": ["数据库"]}
        assert {a["_id"]: owned for a, owned in store.scan()}["a"]["meta.cats"] == ["数据库"]


@pytest.mark.parametrize(("setting", "name", "says"), [
    ("content_field", "$where", "operator"), ("title_field", "a.$x", "operator"),
    ("categories_field", "hybrid.x", "'hybrid'"), ("content_field", "hybrid", "'hybrid'"),
    ("tags_field", "a..b", "empty part"), ("description_field", "", "at least 1 character"),
    ("categories_field", "_id.x", "_id"), ("tags_field", "categories", "overlap"),
    ("categories_field", "content.x", "overlap"), ("tags_field", "title", "overlap")])
def test_field_names_mongodb_would_misread_are_refused_naming_the_setting(
        mongo_config: Config, setting, name, says):
    """A name on its own is refused with the settings (naming the flag), two names that
    overlap when the store opens."""
    with pytest.raises(UsageError, match=rf"{setting} (= )?'[^']*'.*{re.escape(says)}"):
        Store(mongo_config.with_overrides(**{setting: name}))
