"""One text key for an article's id, whatever its type: what the ledger, the bootstrap, the
review files, the store and the run reports all use, so an article is the same article
everywhere.

A MongoDB `_id` may be any BSON type but an array: an ObjectId, a string, a number, a
Decimal128, a sub-document, binary data, a date... The key is the id as relaxed Extended
JSON (what `mongoexport` writes), so the type travels with it: `1` is the number, `"1"` the
string, `{"$oid": "…"}` an ObjectId, `{"n": 1}` a sub-document. A string that does not read
as JSON (`s001`, `post-42`, a URL) is its own key, bare, as a reader expects to see it.
The key is never cut: two long ids that share a beginning are two articles.
"""

from __future__ import annotations

import json
from typing import Any

from bson import json_util
from bson.errors import BSONError

SHOWN_CHARS = 200  # of a key, in a message
_NOT_JSON = object()


def _parse(text: str) -> Any:
    try:
        return json_util.loads(text)
    except (ValueError, TypeError, ArithmeticError, BSONError):  # what bson raises for bad
        return _NOT_JSON  # $-values: {"$oid": "zz"} (InvalidId), {"$numberDecimal": "x"}...


def id_key(value: Any) -> str:
    """The key of an id (`id_value` gives the id back)."""
    if type(value) is str and _parse(value) is _NOT_JSON:  # not a bson Code, a str too
        return value
    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS,
                           ensure_ascii=False)


def id_value(key: str) -> Any:
    """The id a key stands for, with its type (an ObjectId, a number, a sub-document...)."""
    value = _parse(key)
    return key if value is _NOT_JSON else value


def json_key(value: Any) -> str:
    """The key of an id given as a JSON value in Extended JSON, relaxed or canonical (a
    JSONL review row's `_id`, a request's): `1` the number, `"1"` the string,
    `{"$oid": "…"}` an ObjectId, `{"$numberLong": "…"}` a 64-bit number."""
    return id_key(id_value(json.dumps(value)))


def typed_json(key: str) -> Any:
    """The id a key stands for as canonical Extended JSON: a JSON value whose type survives
    any JSON parser, a web page's too (`{"$numberLong": "…"}` keeps digits a JavaScript number
    loses, `{"$numberDouble": "1.0"}` stays no integer); `json_key` gives the key back."""
    return json.loads(json_util.dumps(id_value(key),
                                      json_options=json_util.CANONICAL_JSON_OPTIONS))


def shown(key: str) -> str:
    """A key as a message shows it: cut, with an ellipsis, past `SHOWN_CHARS` characters."""
    return key if len(key) <= SHOWN_CHARS else key[:SHOWN_CHARS] + "…"
