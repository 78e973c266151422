"""hybrid.labels.ledger: day one's labels, with provenance; people's always win; one
bootstrap at a time."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from bson import Decimal128
from helpers import records

from hybrid.errors import LeaseHeld
from hybrid.ingest.ids import id_key
from hybrid.labels.ledger import FileLedger, Label, StoreLedger, winner
from hybrid.mongo.lease import Lease
from hybrid.mongo.store import Store


def test_manual_labels_win_and_a_later_correction_replaces_an_llm_label(tmp_path):
    ledger = FileLedger(tmp_path / "labels.jsonl")
    ledger.add(Label("a", ["数据库"], ["redis"], "llm", "gpt", prompt_tokens=100))
    ledger.add(Label("b", ["前端开发"], [], "manual"))
    ledger.add(Label("b", ["数据库"], [], "llm", "gpt"))  # an LLM never overrides a person
    ledger.add(Label("a", ["人工智能"], [], "manual"))
    labels = ledger.labels()
    assert (labels["a"].source, labels["a"].categories) == ("manual", ["人工智能"])
    assert (labels["b"].source, labels["b"].categories) == ("manual", ["前端开发"])
    lines = (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["prompt_tokens"] == 100


def test_winner_keeps_the_last_llm_label_until_a_person_labels():
    first, second = Label("x", ["a"], source="llm"), Label("x", ["b"], source="llm")
    assert winner([first, second])["x"] is second


def test_in_mongodb_a_teacher_label_never_lands_on_a_manual_article(store, mongo_config):
    docs = records(6, labels=True)
    store.import_records(docs[:2], manual=True)
    store.import_records([{k: v for k, v in d.items() if k not in ("categories", "tags")}
                          for d in docs[2:]])
    ledger = StoreLedger(store)
    articles = ledger.articles()
    assert len(articles) == 6
    for article in articles:
        ledger.add(Label(article.id, ["数据库"], ["mysql"], "llm", "gpt"))
    labels = ledger.labels()
    manual = {d["id"] for d in docs[:2]}
    assert {k for k, v in labels.items() if v.source == "manual"} == manual
    assert all(labels[k].categories == ["数据库"] for k in labels if k not in manual)
    for doc in store.articles.find():
        assert ("teacher" in doc.get("hybrid", {})) == (doc["_id"] not in manual)
        if doc["_id"] in manual:
            assert doc["categories"] == next(d for d in docs if d["id"] == doc["_id"])[
                "categories"]


def test_one_bootstrap_at_a_time_holds_a_file_ledger(tmp_path):
    ledger = FileLedger(tmp_path / "labels.jsonl")
    other = FileLedger(tmp_path / "labels.jsonl")
    with ledger.lock(), pytest.raises(LeaseHeld, match="another bootstrap is labelling with"), \
            other.lock():
        pass
    with ledger.lock():  # released
        ledger.add(Label("a", ["数据库"]))
    assert set(ledger.labels()) == {"a"}


def test_in_mongodb_the_lease_is_kept_while_labelling_and_a_lost_one_stops_it(
        store, mongo_config):
    store.import_records(records(3))
    brief = replace(mongo_config)  # a 1 s lease, below what a setting may hold (30 s or more),
    object.__setattr__(brief, "lease_seconds", 1)  # so renewals are seen in seconds
    with Store(brief) as short:
        ledger = StoreLedger(short)
        ids = [a.id for a in ledger.articles()]
        with ledger.lock():
            time.sleep(2.5)  # past the lease's expiry, had it not been renewed
            with pytest.raises(LeaseHeld, match="holds the lease"):
                Lease(store, "nightly").take()
            ledger.add(Label(ids[0], ["数据库"]))
            store.leases.update_one({}, {"$set": {"run": "thief"}})  # taken over meanwhile
            time.sleep(0.6)
            with pytest.raises(LeaseHeld, match="lost the lease"):
                ledger.add(Label(ids[1], ["数据库"]))  # kept (it was paid for), then stop
        assert set(ledger.labels()) == set(ids[:2])
    assert store.leases.find_one({"run": "thief"})  # a lost lease is not released
    assert store.leases.count_documents({}) == 1


def test_in_mongodb_an_article_is_one_key_whatever_its_id(store):
    """Ids of any BSON type, and long ones, are the same article to the ledger's labels and
    to its articles: a label is never asked for twice (nor unhashable)."""
    docs = records(5)
    ids = [{"n": 1}, Decimal128("1.5"), "x" * 255, "x" * 254 + "y", 1]
    store.articles.insert_many([{**{k: v for k, v in d.items() if k != "id"}, "_id": i}
                                for d, i in zip(docs, ids, strict=True)])
    ledger = StoreLedger(store)
    articles = ledger.articles()
    assert sorted(a.id for a in articles) == sorted(map(id_key, ids))
    for article in articles:
        ledger.add(Label(article.id, ["数据库"], ["mysql"], "llm", "gpt"))
    assert set(ledger.labels()) == {a.id for a in articles}
    assert store.articles.count_documents({"hybrid.teacher": {"$exists": True}}) == 5


def test_a_torn_last_line_is_reported_and_the_next_label_starts_a_new_line(tmp_path, caplog):
    path = tmp_path / "labels.jsonl"
    ledger = FileLedger(path)
    ledger.add(Label("a", ["数据库"], ["redis"], "llm", "gpt"))
    with path.open("a", encoding="utf-8") as fh:  # a kill in the middle of a write
        fh.write('{"id": "b", "categories": ["前端开发"], "tags": [], "sou')
    ledger.add(Label("c", ["人工智能"], [], "manual"))
    assert "cut off" in caplog.text
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["id"] == "c"
    caplog.clear()
    assert set(ledger.labels()) == {"a", "c"}
    assert "line 2: no label, skipped: not JSON (Unterminated string" in caplog.text


@pytest.mark.parametrize("line, field", [
    ('{"id": "b", "categories": ["数据库"], "tags": 5}', "'tags'"),
    ('{"id": "b", "categories": "数据库"}', "'categories'"),
    ('{"id": 7, "categories": ["数据库"]}', "'id'"),
    ('{"id": "b", "categories": ["数据库"], "calls": "lots"}', "'calls'"),
    ('{"id": "b", "categories": ["数据库"], "source": "boss"}', "'source'"),
    ('{"id": "b"}', "'categories' is missing"),
    ('["b", ["数据库"]]', "not a JSON object but a list"),
])
def test_a_line_that_holds_no_label_is_reported_by_line_and_field(tmp_path, caplog, line,
                                                                   field):
    path = tmp_path / "labels.jsonl"
    FileLedger(path).add(Label("a", ["数据库"], ["redis"], "manual"))
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    FileLedger(path).add(Label("c", ["数据库"], [], "manual"))
    assert set(FileLedger(path).labels()) == {"a", "c"}
    assert "line 2: no label, skipped" in caplog.text and field in caplog.text


def test_tags_read_from_a_ledger_are_cleaned_as_on_every_path(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"id": "a", "categories": ["数据库"], "tags": [
        "Redis", "<script>alert(1)</script>", "javascript:alert(1)", "=cmd|calc", "redis",
        "缓存"], "source": "manual"}) + "\n", encoding="utf-8")
    assert FileLedger(path).labels()["a"].tags == ["Redis", "缓存"]
