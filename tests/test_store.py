"""hybrid.store against a real wire-protocol server (SecantusDB, or $MONGODB_TEST_URI)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from hybrid.config import Config
from hybrid.store import (
    LeaseHeld,
    Store,
    StoreError,
    Write,
    content_hash,
    from_extended_json,
    now,
    redact,
    scrub,
)

ARTICLES = [
    {"id": "a1", "title": "Redis 持久化", "description": None, "content": "RDB 与 AOF"},
    {"id": "a2", "title": "Vue 组件", "content": "组合式 API", "categories": ["前端开发"],
     "tags": ["vue"], "author": "x"},
]


@pytest.fixture
def store(mongo_config: Config):
    with Store(mongo_config) as store:
        yield store


def read(store: Store, article_id: str) -> dict:
    """What the nightly job reads of an article: `_id` and the text fields."""
    return store.articles.find_one({"_id": article_id},
                                   {"title": 1, "description": 1, "content": 1})


def test_redact_and_scrub_hide_the_password():
    uri = "mongodb://app:p%40ss/word@db1:27017,db2/?authSource=admin&tlsCertificateKeyFilePassword=k"
    assert redact(uri) == "mongodb://app:***@db1:27017,db2/?authSource=admin&tlsCertificateKeyFilePassword=***"
    assert redact("mongodb+srv://u:x@h/") == "mongodb+srv://u:***@h/"
    assert redact("mongodb://h:27017/") == "mongodb://h:27017/"
    assert scrub("auth failed for p@ss/word and p%40ss/word", uri).count("***") == 2


def test_content_hash_covers_exactly_the_configured_text_fields():
    config = Config(content_field="body")
    base = {"_id": 1, "title": "t", "body": "b", "categories": ["x"], "hybrid": {}}
    same = {**base, "categories": ["y"], "other": 1, "content": "ignored"}
    assert content_hash(base, config) == content_hash(same, config)
    assert content_hash(base, config) != content_hash({**base, "body": "b2"}, config)
    assert content_hash(base, config) != content_hash({**base, "body": 42}, config)
    missing, null = dict(base), {**base, "description": None}
    assert content_hash(missing, config) == content_hash(null, config)


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
    assert store.export(out) == 3
    before = list(store.articles.find(sort=[("_id", 1)]))
    store.articles.delete_many({})
    records = [from_extended_json(json.loads(line)) for line in out.getvalue().splitlines()]
    assert store.import_records(records) == {}
    assert list(store.articles.find(sort=[("_id", 1)])) == before


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
        records = store.manual_records()
        assert [(r["_id"], r["title"], r["categories"]) for r in records] == [
            ("a2", "Vue 组件", ["前端开发"])]


def test_scan_is_in_id_order_after_a_checkpoint_with_owned_fields_apart(store: Store):
    store.import_records([{"id": f"a{i:02d}", "title": f"t{i}", "categories": ["x"],
                           "author": "me"} for i in range(20)])
    scanned = list(store.scan(after="a04"))
    assert [a["_id"] for a, _ in scanned] == [f"a{i:02d}" for i in range(5, 20)]
    article, owned = scanned[0]
    assert set(article) == {"_id", "title"} and owned == {"categories": ["x"]}


def test_lease_is_exclusive_expires_and_is_taken_over_from_a_dead_process(store: Store):
    first, second = ObjectId(), ObjectId()
    store.take_lease(first)
    store.take_lease(first)  # a retried take of our own lease is fine
    with pytest.raises(LeaseHeld, match="another run is tagging"):
        store.take_lease(second)
    store.leases.update_one({}, {"$set": {"expires_at": now() - timedelta(seconds=1)}})
    store.take_lease(second)  # expired
    with pytest.raises(LeaseHeld, match="lost the lease"):
        store.renew_lease(first)
    store.renew_lease(second)

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    store.leases.update_one({}, {"$set": {"pid": int(dead.stdout)}})
    third = ObjectId()
    store.take_lease(third)  # same host, holder process gone: taken over at once
    assert store.leases.find_one()["run"] == third and store.leases.find_one()["pid"] == os.getpid()
    store.release_lease(third)
    assert store.leases.count_documents({}) == 0


def test_transient_errors_are_retried_until_the_server_answers(mongo_config: Config, caplog):
    # poll the server often, so the driver sees the "stepped down" primary back quickly
    uri = mongo_config.mongo_uri
    uri += ("&" if "?" in uri else "?") + "serverMonitoringMode=poll&heartbeatFrequencyMS=500"
    with Store(replace(mongo_config, mongo_uri=uri, mongo_retry_seconds=20)) as store:
        store.import_records(ARTICLES)
        admin = store.client.admin
        try:  # the driver retries once by itself: 3 failures reach our backoff
            admin.command("configureFailPoint", "failCommand", mode={"times": 3},
                          data={"failCommands": ["update"], "errorCode": 189,
                                "appName": "hybrid"})
        except OperationFailure:
            pytest.skip("server without test commands (configureFailPoint)")
        write = Write(read(store, "a1"), {"content_hash": "h"}, ["x"], [])
        assert store.write([write]).written == 1
        admin.command("configureFailPoint", "failCommand", mode={"times": 3},
                      data={"failCommands": ["find"], "closeConnection": True,
                            "appName": "hybrid"})
        assert [a["_id"] for a, _ in store.scan()] == ["a1", "a2"]
    retries = [r.message for r in caplog.records if "event=retry" in r.message]
    assert any("writing labels" in m for m in retries)
    assert any("reading articles" in m for m in retries)


def test_a_server_that_stays_down_gives_a_clear_error(mongo_config: Config):
    down = replace(mongo_config, mongo_uri="mongodb://u:pw-123@127.0.0.1:9/", mongo_timeout=0.3,
                   mongo_retry_seconds=1.0)
    with (Store(down) as store,
          pytest.raises(StoreError, match=r"lost MongoDB at mongodb://u:\*\*\*@127") as err):
        store.last_run()
    assert "pw-123" not in str(err.value)
