"""Which articles are people's: `hybrid.source` "manual" or `hybrid.locked` true, as people
write them, and the queries that find them (or leave them out).

A run writes an article only if both fields say, in one of the spellings below, that it may:
a whitelist, so a value nobody foresaw is never overwritten; the scan reports any other
value, and a `hybrid` field that is no sub-document, as that article's error.
"""

from __future__ import annotations

from typing import Any

from bson import Int64

from hybrid.mongo.fields import STATE

_UNLOCKED = [None, False, 0, "", "false", "False", "FALSE", "no", "No", "NO", "0", "off",
             "Off", "OFF"]
_LOCKED = [True, "true", "True", "TRUE", "yes", "Yes", "YES", "1", "on", "On", "ON", "locked"]
_MANUAL_SOURCES = ["manual", "Manual", "MANUAL"]
_RUN_SOURCES = [None, "model", "llm"]
MANUAL = {"$or": [{f"{STATE}.source": {"$in": _MANUAL_SOURCES}},
                  {f"{STATE}.locked": {"$in": _LOCKED}}, {f"{STATE}.locked": {"$gt": 0}},
                  {f"{STATE}.locked": {"$lt": 0}}]}
NOT_MANUAL = {f"{STATE}.locked": {"$in": _UNLOCKED}, f"{STATE}.source": {"$in": _RUN_SOURCES}}
LABELLED = {"$or": [*MANUAL["$or"], {f"{STATE}.teacher": {"$exists": True}}]}
_LOCKED_WORDS = {"true", "yes", "1", "on", "locked"}
_PLAIN = (type(None), bool, int, Int64, float, str)


def is_manual(state: Any) -> bool:
    """`hybrid.source` "manual" or `hybrid.locked` true, in any of the usual spellings."""
    if not isinstance(state, dict):
        return False
    source = state.get("source")
    return (isinstance(source, str) and source.strip().casefold() == "manual"
            ) or _locked(state.get("locked"))


def _locked(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().casefold() in _LOCKED_WORDS


def _one_of(value: Any, allowed: list[Any]) -> bool:
    """`value in allowed` as the write guard's `$in` sees it: of a plain type (a bson `Code`
    equals its text in Python, not in MongoDB; a Decimal128 the other way round)."""
    return type(value) in _PLAIN and value in allowed


def lock_problem(state: Any) -> str | None:
    """Why a run may neither skip this article as manual nor write it, if so: a value of
    `hybrid.locked` or `hybrid.source` that says neither, or a `hybrid` field that is no
    sub-document (someone else's data: never overwritten)."""
    if state is None:
        return None
    if not isinstance(state, dict):
        return (f"field '{STATE}' is {type(state).__name__} {state!r:.80}, not the sub-document "
                "hybrid writes: left as it is")
    if is_manual(state):
        return None
    if not _one_of(state.get("locked"), _UNLOCKED):
        return (f"field 'hybrid.locked' is {state['locked']!r}: use true (never write this "
                "article) or false; left as it is")
    if not _one_of(state.get("source"), _RUN_SOURCES):
        return (f"field 'hybrid.source' is {state['source']!r}: use 'manual' to keep its labels "
                "as they are, or remove the field; left as it is")
    return None
