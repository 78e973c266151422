"""`hybrid run` (1 and 2 workers) on MongoDB against documents hypothesis generates: every BSON
type in every field, `_id` included (all types MongoDB takes as an `_id`), at any depth.

The promise: no traceback and no conflict; every document is tagged, or its error is
recorded (in `hybrid.error`, or for a `hybrid` field it cannot write, in the run report), or
it is skipped as manual by the documented rule; no field but ours changes; one worker or
two, the same labels. `tests/test_hostile_input.py` does the same for files.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from helpers import OWNED, cron, records
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pymongo.errors import BulkWriteError

from hybrid.errors import Exit
from hybrid.ingest.ids import id_key
from hybrid.learn.artifacts import read_manifest
from hybrid.mongo.marks import is_manual
from hybrid.mongo.store import Store, content_hash

DOCUMENTS = 520  # generated; through `hybrid run` with one worker, then two: 1,040 in all
TEXT_FIELDS = ("title", "description", "content")
FOREIGN = ("views", "author", "meta")

# BSON strings are UTF-8: no lone surrogates (a driver refuses them, as it should)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
name = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00.$"),
               min_size=1, max_size=6)
flags = st.sampled_from(["", "i", "ms", "ix"])
# every BSON type but arrays and documents (`value` adds those) and regular expressions
# (`scalar` adds them): what an `_id` may be
id_scalar = st.one_of(
    text, st.integers(-2**31, 2**31 - 1), st.integers(-2**63, 2**63 - 1).map(Int64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(lambda digits, exponent: Decimal128(f"{digits}E{exponent}"),
              st.integers(-10**33, 10**33), st.integers(-6000, 6000))
    | st.sampled_from(["NaN", "-Infinity", "Infinity", "-0", "1.5"]).map(Decimal128),
    st.booleans(), st.none(), st.builds(ObjectId),
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)),
    st.binary(max_size=12), st.builds(Binary, st.binary(max_size=16),
                                      st.sampled_from([0, 1, 4, 5, 128])),
    st.builds(Code, text),
    st.builds(Code, text, st.dictionaries(name, st.integers(-9, 9), min_size=1, max_size=2)),
    st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.just(MinKey()), st.just(MaxKey()))
scalar = id_scalar | st.builds(Regex, text.map(lambda t: t.replace("\0", "")), flags)
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(name, inner, max_size=3), max_leaves=6)
article_id = id_scalar | st.dictionaries(name, value, min_size=1, max_size=3)
# what people (and other programs) leave in `hybrid`
state = st.fixed_dictionaries({}, optional={
    "locked": value, "source": st.sampled_from(["model", "llm", "manual", "Human"]) | value,
    "content_hash": text | value, "error": value, "teacher": value, "scores": value})
SAMPLES = records(40)
# One of each type an `_id` may be, drawn or not: what hypothesis draws follows the literals
# of the modules loaded too, so it shifts with the code and with the tests run before
EVERY_ID = [2.5, "s001", {"n": 1}, Binary(b"\x01", 4), ObjectId("0123456789abcdef01234567"),
            True, datetime(2020, 1, 1, tzinfo=UTC), None, Code("x"), Code("x", {"a": 1}), 7,
            Timestamp(1, 1), Int64(2**40), Decimal128("3.5"), MinKey(), MaxKey()]


@st.composite
def document(draw) -> dict[str, Any]:
    """From an ordinary article (with text a model can tag) to one with anything anywhere."""
    doc: dict[str, Any] = {"_id": draw(article_id)}
    kind = draw(st.sampled_from(["article", "random-text", "random-text", "hostile"]))
    if kind == "article":
        sample = draw(st.sampled_from(SAMPLES))
        doc.update({f: sample.get(f) for f in TEXT_FIELDS if sample.get(f) is not None})
    for field in TEXT_FIELDS:
        if kind == "random-text" and draw(st.booleans()):
            doc[field] = draw(text)
        elif kind == "hostile" and draw(st.booleans()):
            doc[field] = draw(value)
    for field in ("categories", "tags", *FOREIGN):
        if draw(st.booleans()):
            doc[field] = draw(value)
    if draw(st.integers(0, 3)) == 0:
        doc["hybrid"] = draw(state | value)
    return doc


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    """The documents hypothesis generates (its edge cases first), after one of each `_id`
    type (`EVERY_ID`, there and in a field, with an array and a regular expression)."""
    out: list[dict[str, Any]] = []

    def collect(doc: dict[str, Any]) -> None:
        bson.encode(doc)  # only what BSON can hold: a driver refuses the rest, as it should
        out.append(doc)

    for article_id in reversed(EVERY_ID):
        collect = example({"_id": article_id, "meta": [article_id, Regex("x", "i")]})(collect)
    settings(max_examples=DOCUMENTS, deadline=None, derandomize=True, database=None,
             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))(
        given(document())(collect))()
    return out


def insert(store: Store, documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The documents as the server stores them, by `id_key`. An `_id` equal to one before
    (hypothesis draws 0, "" and True often; 1 equals 1.0 and Decimal128("1")) is wrapped in a
    sub-document with the document's number, so every document is one of its own."""
    try:
        store.articles.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        assert {e["code"] for e in exc.details["writeErrors"]} == {11000}, exc.details
        store.articles.insert_many([{**documents[e["index"]], "_id": {
            "n": e["index"], "id": documents[e["index"]]["_id"]}}
            for e in exc.details["writeErrors"]])
    return {id_key(d["_id"]): d for d in store.articles.find()}


def same(a: Any, b: Any) -> bool:
    """Equal as BSON: the type, the field order and NaN count."""
    return bson.encode({"v": a}) == bson.encode({"v": b})


def outcome(before: dict[str, Any], after: dict[str, Any], run: Any, reported: set[str],
            authorized: set[str], config) -> str:
    """What `run` did to one document, checked: "tagged", "error" (in `hybrid.error` and the
    report), "reported" (only in the report: a `hybrid` field no run may write), or
    "manual"."""
    key = id_key(after["_id"])
    assert same({k: v for k, v in after.items() if k not in OWNED},
                {k: v for k, v in before.items() if k not in OWNED}), key  # ours only
    state = after.get("hybrid")
    if not (isinstance(state, dict) and state.get("run") == run):  # not written
        assert same(after, before), key
        if is_manual(before.get("hybrid")):
            return "manual"
        assert key in reported, key
        return "reported"
    if "error" in state:
        assert key in reported, key
        assert isinstance(state["error"], str) and state["error"], key
        for field in ("categories", "tags"):  # a failure leaves the labels as they were
            assert same(after.get(field), before.get(field)), key
        return "error"
    assert state["source"] == "model" and state["content_hash"] == content_hash(after, config)
    assert 1 <= len(after["categories"]) <= 3 and set(after["categories"]) <= authorized, key
    assert all(isinstance(t, str) and t for t in after["tags"]), key
    return "tagged"


@pytest.fixture(scope="module")
def tallies() -> dict[str, Any]:
    """What each run did, by worker count, to compare the two."""
    return {}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_run_accounts_for_every_hostile_document(documents, mongo_config, sample_model_dir,
                                                 workers, tallies):
    authorized = set(read_manifest(sample_model_dir)["categories"])
    with Store(mongo_config) as store:
        before = insert(store, documents)
        started = time.perf_counter()
        result = cron(mongo_config, "run", "--model", str(sample_model_dir), "--workers",
                      workers, "--batch-size", "64", "--json")
        seconds = time.perf_counter() - started
        assert result.exit_code in (Exit.OK, Exit.PARTIAL), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        assert "Traceback" not in result.output
        report = json.loads(result.stdout)
        counts, run = report["counts"], store.runs.find_one()["_id"]
        after = {id_key(d["_id"]): d for d in store.articles.find()}
        reported = {id_key(e["_id"]) for e in store.runs.find_one()["errors"]}
    assert set(after) == set(before) and len(before) == len(documents)
    assert counts["seen"] == len(before) and counts["conflicts"] == 0
    outcomes = {key: outcome(before[key], doc, run, reported, authorized, mongo_config)
                for key, doc in after.items()}
    seen = Counter(outcomes.values())
    assert seen["tagged"] == counts["tagged"] and seen["manual"] == counts["skipped_manual"]
    assert seen["error"] + seen["reported"] == counts["failed"]
    assert seen["tagged"] > 100 and seen["error"] > 100, seen  # both paths were exercised
    tallies[workers] = {"documents": len(before), **seen, "seconds": round(seconds, 1),
                        "labels": {k: (outcomes[k], d.get("categories"), d.get("tags"))
                                   for k, d in after.items()}}
    if len(tallies) == 2:  # one worker or two: the same outcome and labels for each
        one, two = tallies["1"]["labels"], tallies["2"]["labels"]
        assert set(one) == set(two)
        assert not [k for k in one if not same(one[k], two[k])]  # as BSON: NaN is NaN
        print("\nhostile documents through `hybrid run`:", {
            w: {k: v for k, v in t.items() if k != "labels"} for w, t in tallies.items()})


def bson_types(value: Any) -> set[int]:
    """The BSON type codes in `value`, at any depth."""
    found = {bson.encode({"v": value})[4]}
    children = value.values() if isinstance(value, dict) else \
        value if isinstance(value, list) else []
    for child in children:
        found |= bson_types(child)
    return found


def test_the_generated_documents_hold_every_bson_type(documents):
    """The suite's promise rests on this: each type in `_id`s, and in the other fields."""
    every = {0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0F, 0x10,
             0x11, 0x12, 0x13, 0x7F, 0xFF}
    in_ids = set().union(*({bson.encode({"v": d["_id"]})[4]} for d in documents))
    elsewhere = set().union(*(bson_types(v) for d in documents for k, v in d.items()
                              if k != "_id"))
    assert in_ids == every - {0x04, 0x0B}, sorted(every - {0x04, 0x0B} - in_ids)
    assert elsewhere == every, sorted(every - elsewhere)
    assert len(documents) >= DOCUMENTS
