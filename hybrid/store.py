"""Everything that talks to MongoDB: connecting, the article scan, guarded writes of the
fields we own, the run lease, run reports (which hold the checkpoint), import and export.

We own three fields of an article: the categories and tags fields (names configurable) and
`hybrid`, a sub-document saying how they were made. With `results_collection` set, they
live in a document of that collection with the article's `_id`, and articles are only read.

Manual labels: an article whose `hybrid.source` is "manual" or whose `hybrid.locked` is true
is never written, whatever a run selects. Every write is also conditional on the article's
text still being what the labels were computed from, so an edit made meanwhile is not
overwritten with labels for the old text (the next run tags the new text).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO, TypeVar
from urllib.parse import unquote

import bson
from bson import json_util
from pymongo import InsertOne, MongoClient, UpdateOne
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)
from pymongo.write_concern import WriteConcern

from hybrid.config import Config
from hybrid.pipeline import batches

STATE = "hybrid"
RUNS = "hybrid_runs"
LEASES = "hybrid_leases"
MANUAL = {"$or": [{f"{STATE}.source": "manual"}, {f"{STATE}.locked": True}]}
NOT_MANUAL = {f"{STATE}.source": {"$ne": "manual"}, f"{STATE}.locked": {"$ne": True}}
# Server codes that mean "try again": shutdown, stepdown, not primary, network timeouts.
_RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
_DUPLICATE_KEY = 11000
_CREDENTIALS = re.compile(r"(?<=://)([^:/@]*):(.*)@")  # to the last @: over-redact, never under
_PASSWORD_OPTION = re.compile(r"(?i)(password=)[^&\s]*")
_MAX_BACKOFF = 30.0
log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreError(RuntimeError):
    """MongoDB stayed unreachable past the retry budget; the checkpoint is kept."""


class LeaseHeld(RuntimeError):
    """Another run holds (or took over) the lease on this collection."""


def redact(uri: str) -> str:
    """The URI with its password replaced by ***, for messages and logs."""
    return _PASSWORD_OPTION.sub(r"\1***", _CREDENTIALS.sub(r"\1:***@", uri))


def scrub(text: str, uri: str | None) -> str:
    """`text` (an error message, say) without the password of `uri`, quoted or not."""
    text = redact(text)
    match = _CREDENTIALS.search(uri or "")
    secret = match.group(2) if match else ""
    for literal in filter(None, {secret, unquote(secret)}):
        text = text.replace(literal, "***")
    return text


def is_manual(state: Any) -> bool:
    return isinstance(state, dict) and (state.get("source") == "manual"
                                        or state.get("locked") is True)


def content_hash(article: dict[str, Any], config: Config) -> str:
    """sha256 of the title, description and content fields as read (BSON, so any type works)."""
    fields = {name: article.get(name) for name in text_fields(config)}
    return hashlib.sha256(bson.encode(fields)).hexdigest()


def text_fields(config: Config) -> list[str]:
    return [config.title_field, config.description_field, config.content_field]


def now() -> datetime:
    """UTC, cut to milliseconds: what BSON stores, so a value read back compares equal."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@dataclass
class Write:
    """Our fields for one article. `categories`/`tags` None (a failure) leaves the labels."""
    article: dict[str, Any]  # `_id` and the text fields as read: the guard
    state: dict[str, Any]  # the `hybrid` sub-document's fields to set
    categories: list[str] | None = None
    tags: list[str] | None = None


@dataclass
class WriteOutcome:
    written: int = 0
    conflicts: int = 0  # edited, deleted or marked manual since read: left alone
    errors: dict[int, str] = field(default_factory=dict)  # index in the batch → server message


class Store:
    """One collection of articles (and where their labels go) on one server."""

    def __init__(self, config: Config) -> None:
        if not config.mongo_uri:
            raise StoreError("no MongoDB URI: pass --mongo-uri, set MONGODB_URI, or set "
                             "mongo_uri in the config file")
        self.config = config
        self.where = f"{redact(config.mongo_uri)} ({config.mongo_db}.{config.mongo_collection})"
        ms = int(config.mongo_timeout * 1000)
        self.client: MongoClient = MongoClient(
            config.mongo_uri, tz_aware=True, appname="hybrid", serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms, socketTimeoutMS=ms)
        # Journaled writes: what a checkpoint says was written survives a server crash.
        durable = WriteConcern(**{**self.client.write_concern.document, "j": True})
        db = self.client[config.mongo_db]
        self.articles = db[config.mongo_collection]
        self.labels = db.get_collection(config.results_collection or config.mongo_collection,
                                        write_concern=durable)
        self.runs = db.get_collection(RUNS, write_concern=durable)
        self.leases = db.get_collection(LEASES, write_concern=durable)
        self.separate = bool(config.results_collection)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        return scrub(text, self.config.mongo_uri)

    # ---- retries ---------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T], retry: bool = True) -> T:
        """`fn()`, retried with backoff on transient errors (lost connection, stepdown)."""
        backoff = _Backoff(self, what, self.config.mongo_retry_seconds if retry else 0.0)
        while True:
            try:
                return fn()
            except PyMongoError as exc:
                backoff.wait(exc)

    # ---- reading ---------------------------------------------------------------------------
    def estimated_count(self) -> int:
        return self.call("counting articles", self.articles.estimated_document_count)

    def scan(self, after: Any = None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(article, owned) in `_id` order, after `after`. `article` is `_id` and the text
        fields as read; `owned` our fields as stored ({} if never tagged). One cursor (paging
        is slow on some servers); after a lost connection it reopens past the last `_id` read.
        Assumes every `_id` has the same BSON type, as range queries on `_id` compare in type.
        """
        size = self.config.batch_size
        wanted = text_fields(self.config) + ([] if self.separate else self._owned_fields())
        projection = dict.fromkeys(wanted, 1)
        last = after
        backoff = _Backoff(self, "reading articles", self.config.mongo_retry_seconds)
        while True:
            query = {} if last is None else {"_id": {"$gt": last}}
            try:
                cursor = self.articles.find(query, projection, sort=[("_id", 1)],
                                            batch_size=size)
                for chunk in batches(cursor, size):
                    owned = self._owned(chunk)
                    backoff.reset()
                    for article in chunk:
                        last = article["_id"]
                        yield article, owned.get(last, {})
                return
            except PyMongoError as exc:
                backoff.wait(exc)

    def _owned_fields(self) -> list[str]:
        return [self.config.categories_field, self.config.tags_field, STATE]

    def _owned(self, chunk: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
        if not self.separate:
            return {a["_id"]: {k: a.pop(k) for k in self._owned_fields() if k in a}
                    for a in chunk}
        found = self.labels.find({"_id": {"$in": [a["_id"] for a in chunk]}})
        return {doc.pop("_id"): doc for doc in found}

    def manual_records(self) -> list[dict[str, Any]]:
        """Articles with manual labels, as records (text fields + labels) for training."""
        labels = [self.config.categories_field, self.config.tags_field]
        text = text_fields(self.config)
        if not self.separate:
            return self.call("reading labelled articles", lambda: list(
                self.articles.find(MANUAL, dict.fromkeys(text + labels, 1))))
        owned = {d.pop("_id"): d for d in self.call("reading manual labels", lambda: list(
            self.labels.find(MANUAL, dict.fromkeys(labels, 1))))}
        records = []
        for chunk in batches(list(owned), self.config.batch_size):
            for article in self.call("reading labelled articles", lambda c=chunk: list(
                    self.articles.find({"_id": {"$in": c}}, dict.fromkeys(text, 1)))):
                records.append({**article, **owned[article["_id"]]})
        return records

    # ---- writing labels ----------------------------------------------------------------------
    def write(self, writes: list[Write]) -> WriteOutcome:
        """One unordered bulk write; safe to repeat, so a transient error retries all of it."""
        if not writes:
            return WriteOutcome()
        ops = [UpdateOne(self._guard(w.article), self._update(w), upsert=self.separate)
               for w in writes]
        try:
            result = self.call("writing labels",
                               lambda: self.labels.bulk_write(ops, ordered=False))
            done, errors = result.matched_count + result.upserted_count, {}
        except BulkWriteError as exc:
            details = exc.details
            done = details["nMatched"] + details["nUpserted"]
            # a duplicate key is an upsert refused by the manual guard: a conflict, not an error
            errors = {e["index"]: e["errmsg"] for e in details["writeErrors"]
                      if e["code"] != _DUPLICATE_KEY}
        return WriteOutcome(done, len(writes) - done - len(errors), errors)

    def _guard(self, article: dict[str, Any]) -> dict[str, Any]:
        guard = {"_id": article["_id"], **NOT_MANUAL}
        if not self.separate:  # the text must still be what the labels were computed from
            guard.update({name: article.get(name) for name in text_fields(self.config)})
        return guard

    def _update(self, w: Write) -> dict[str, Any]:
        values = {f"{STATE}.{k}": v for k, v in w.state.items()}
        if w.categories is not None:
            values[self.config.categories_field] = w.categories
        if w.tags is not None:
            values[self.config.tags_field] = w.tags
        update: dict[str, Any] = {"$set": values}
        if "error" not in w.state:
            update["$unset"] = {f"{STATE}.error": ""}
        return update

    # ---- lease -------------------------------------------------------------------------------
    @property
    def _lease_id(self) -> str:
        return self.config.mongo_collection

    def take_lease(self, run_id: Any) -> None:
        """Only one run per collection at a time. A lease expires `lease_seconds` after its last
        renewal; one held by a process of this host that has died is taken over at once."""
        start = now()
        holder = {"run": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                  "taken_at": start,
                  "expires_at": start + timedelta(seconds=self.config.lease_seconds)}
        try:
            self.call("taking the lease", lambda: self.leases.find_one_and_update(
                {"_id": self._lease_id, "expires_at": {"$lt": start}}, {"$set": holder},
                upsert=True))
            return
        except DuplicateKeyError:
            current = self.call("reading the lease",
                                lambda: self.leases.find_one({"_id": self._lease_id})) or {}
        if current.get("run") == run_id:  # our own take, retried after a lost reply
            return
        if current.get("host") == holder["host"] and not _alive(current.get("pid")):
            taken = self.call("taking over a dead run's lease", lambda: self.leases.update_one(
                {"_id": self._lease_id, "run": current.get("run")}, {"$set": holder}))
            if taken.matched_count:
                log.warning("event=lease_taken_over collection=%s dead_run=%s dead_pid=%s",
                            self._lease_id, current.get("run"), current.get("pid"))
                return
        raise LeaseHeld(
            f"another run is tagging {self.where}: run {current.get('run')} on "
            f"{current.get('host')} (pid {current.get('pid')}) holds the lease until "
            f"{current.get('expires_at')}; if that run died, its lease expires then")

    def renew_lease(self, run_id: Any) -> None:
        expires = now() + timedelta(seconds=self.config.lease_seconds)
        renewed = self.call("renewing the lease", lambda: self.leases.update_one(
            {"_id": self._lease_id, "run": run_id}, {"$set": {"expires_at": expires}}))
        if not renewed.matched_count:
            raise LeaseHeld(f"lost the lease on {self.where}: it expired and another run took "
                            "it over; stopping so two runs do not write at once")

    def release_lease(self, run_id: Any, retry: bool = True) -> None:
        self.call("releasing the lease", lambda: self.leases.delete_one(
            {"_id": self._lease_id, "run": run_id}), retry)

    # ---- run reports -------------------------------------------------------------------------
    def last_run(self) -> dict[str, Any] | None:
        return self.call("reading the last run", lambda: self.runs.find_one(
            {"collection": self.config.mongo_collection}, sort=[("started_at", -1)]))

    def close_dead_runs(self, run_id: Any) -> None:
        """Under our lease, any other run still marked running has died."""
        self.call("closing dead runs", lambda: self.runs.update_many(
            {"collection": self.config.mongo_collection, "status": "running",
             "_id": {"$ne": run_id}}, {"$set": {"status": "interrupted"}}))

    def save_run(self, report: dict[str, Any], retry: bool = True) -> None:
        self.call("saving the run report", lambda: self.runs.replace_one(
            {"_id": report["_id"]}, report, upsert=True), retry)

    # ---- import and export -------------------------------------------------------------------
    def import_records(self, records: list[dict[str, Any]], manual: bool = False
                       ) -> dict[int, str]:
        """Upsert by `_id` (or the id field) setting the record's fields, so a re-import
        updates text and leaves our fields alone; `manual` marks the labels as manual.
        Returns errors by index in `records`."""
        ops = []
        for record in records:
            record = dict(record)
            key = record.pop("_id", None)
            key = record.get(self.config.id_field) if key is None else key
            if manual and record.get(self.config.categories_field):
                record[STATE] = {**(record.get(STATE) or {}), "source": "manual"}
            ops.append(InsertOne(record) if key is None else
                       UpdateOne({"_id": key}, {"$set": record}, upsert=True))
        if not ops:
            return {}
        try:
            self.call("importing articles", lambda: self.articles.bulk_write(ops, ordered=False))
        except BulkWriteError as exc:
            return {e["index"]: e["errmsg"] for e in exc.details["writeErrors"]}
        return {}

    def export(self, out: TextIO, progress: Callable[[int], object] = lambda n: None) -> int:
        """Every document as one line of MongoDB relaxed Extended JSON (what mongoexport
        writes, and what `import_records` reads back)."""
        count = 0
        for article in self.articles.find({}, sort=[("_id", 1)]):
            out.write(json_util.dumps(article, json_options=json_util.RELAXED_JSON_OPTIONS,
                                      ensure_ascii=False) + "\n")
            count += 1
            progress(1)
        return count


def from_extended_json(value: Any) -> Any:
    """Turn Extended JSON values of a parsed record ({"$oid": ...}, {"$date": ...}) into BSON
    types, bottom-up, as `json_util.loads` would."""
    if isinstance(value, dict):
        return json_util.object_hook({k: from_extended_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return [from_extended_json(v) for v in value]
    return value


class _Backoff:
    """Exponential backoff for transient errors within a time budget; other errors pass."""

    def __init__(self, store: Store, what: str, budget: float) -> None:
        self.store, self.what, self.budget = store, what, budget
        self.reset()

    def reset(self) -> None:
        self.deadline: float | None = None
        self.delay = 0.5

    def wait(self, exc: PyMongoError) -> None:
        if not _transient(exc):
            raise exc
        now_ = time.monotonic()
        if self.deadline is None:
            self.deadline = now_ + self.budget
        message = self.store.scrub(f"{type(exc).__name__}: {exc}")
        if now_ + self.delay > self.deadline:
            raise StoreError(f"lost MongoDB at {self.store.where} while {self.what}: still "
                             f"failing after {self.budget:g}s ({message[:300]})") from exc
        log.warning("event=retry while=%r wait=%.1fs error=%r", self.what, self.delay,
                    message[:200])
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, _MAX_BACKOFF)


def _transient(exc: PyMongoError) -> bool:
    if isinstance(exc, ConnectionFailure):  # AutoReconnect, NetworkTimeout, NotPrimaryError
        return True
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        codes = [e.get("code") for e in details.get("writeErrors", [])
                 + details.get("writeConcernErrors", [])]
        return bool(codes) and all(c in _RETRYABLE_CODES for c in codes)
    if isinstance(exc, OperationFailure):
        return exc.code in _RETRYABLE_CODES or exc.has_error_label("RetryableWriteError")
    return False


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: assume alive, wait for expiry
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
