"""hybrid.ingest.ids: one key for an article's id, whatever its BSON type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp

from hybrid.ingest.ids import SHOWN_CHARS, id_key, id_value, shown

# every type MongoDB takes as an `_id` (all but arrays, regular expressions and undefined)
IDS = [ObjectId("65a1b2c3d4e5f60718293a4b"), "s001", "1", 1, Int64(2**40), 1.5,
       float("inf"), Decimal128("1.5"), Decimal128("NaN"), {"n": 1}, {"b": 2, "a": [1, "x"]},
       b"\x00\xff", Binary(uuid.UUID(int=7).bytes, 4), datetime(2024, 5, 1, 12, 30),
       True, None, MinKey(), MaxKey(), Timestamp(5, 1), Code("x"), "x" * 255, '"quoted"',
       "null", "  1", "数据库", "{\"$oid\": \"65a1b2c3d4e5f60718293a4b\"}",
       '{"$oid": "zz"}', '{"$numberDecimal": "x"}', '{"$date": "nope"}']  # Extended JSON
# with a bad $-value is no id but a string, its own key


@pytest.mark.parametrize("value", IDS, ids=lambda v: type(v).__name__)
def test_the_key_gives_back_the_id_with_its_type(value):
    key = id_key(value)
    back = id_value(key)
    # compared as BSON: the type, the field order and NaN count
    assert bson.encode({"_id": back}) == bson.encode({"_id": value})
    assert id_key(back) == key


def test_keys_of_different_ids_differ_and_a_plain_string_is_its_own_key():
    keys = [id_key(v) for v in IDS]
    assert len(set(keys)) == len(keys)
    assert id_key(1) != id_key("1") != id_key(1.0)
    assert id_key("s001") == "s001" and id_key("x" * 255) == "x" * 255
    assert id_key(ObjectId("65a1b2c3d4e5f60718293a4b")) == '{"$oid": "65a1b2c3d4e5f60718293a4b"}'
    assert id_key(datetime(2024, 5, 1, tzinfo=UTC)) == id_key(datetime(2024, 5, 1))


def test_shown_cuts_only_long_keys():
    assert shown("s001") == "s001"
    assert len(shown("x" * 1000)) == SHOWN_CHARS + 1
