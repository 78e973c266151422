"""One collection of articles on one server: the article scan, guarded writes of the fields
we own, manual labels, import and export, and every other query the commands need.

We own three fields of an article: the categories and tags fields (names configurable) and
`hybrid`, a sub-document saying how they were made. With `results_collection` set, they
live in a document of that collection with the article's `_id`, and articles are only read.

Manual labels (`hybrid.mongo.marks`) are never written, whatever a run selects. Every write
of labels is also conditional on the article's text still being what the labels were
computed from, so an edit made meanwhile is not overwritten with labels for the old text
(the next run tags the new text; it also retries a failure, which writes no labels).

Field names may be dotted paths (`body.html`, checked by `hybrid.mongo.fields`); our fields
come back from every query under their configured names. `_id`s compare by `id_key`: any
BSON type works, a sub-document or a Decimal128 included.

Any MongoDB error that leaves a `with Store(...)` block becomes a `StoreError` whose message
never shows the password.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

import bson
from more_itertools import chunked
from pymongo import InsertOne, MongoClient, UpdateOne
from pymongo.cursor import Cursor
from pymongo.errors import BulkWriteError, ConfigurationError, DuplicateKeyError, PyMongoError
from pymongo.write_concern import WriteConcern

from hybrid.config import Config
from hybrid.errors import StoreError, UsageError
from hybrid.ingest.article import read_field
from hybrid.ingest.ids import id_key
from hybrid.mongo.fields import STATE, check_field_names
from hybrid.mongo.marks import LABELLED, MANUAL, NOT_MANUAL
from hybrid.mongo.retry import briefly, call_within, transient
from hybrid.mongo.uri import redact, scrub

RUNS = "hybrid_runs"
LEASES = "hybrid_leases"
_DUPLICATE_KEY = 11000
_BEST_EFFORT_SECONDS = 2.0
T = TypeVar("T")


def content_hash(article: dict[str, Any], config: Config) -> str:
    """sha256 of the title, description and content fields as read (BSON, so any type works):
    what `hybrid.content_hash` holds."""
    fields = {name: read_field(article, name) for name in text_fields(config)}
    return hashlib.sha256(bson.encode(fields)).hexdigest()


def text_fields(config: Config) -> list[str]:
    return [config.title_field, config.description_field, config.content_field]


def _id_range(after: Any, until: Any) -> dict[str, Any]:
    bounds = {op: v for op, v in (("$gt", after), ("$lte", until)) if v is not None}
    return {"_id": bounds} if bounds else {}


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
        check_field_names(vars(config))
        if not config.mongo_uri:
            raise StoreError("no MongoDB URI: pass --mongo-uri, set MONGODB_URI, or set "
                             "mongo_uri in the config file")
        self.config = config
        self.where = f"{redact(config.mongo_uri)} ({config.mongo_db}.{config.mongo_collection})"
        if not config.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise UsageError("the MongoDB URI must start with mongodb:// or mongodb+srv:// "
                             "(it is not shown here: it may hold a password)")
        ms = int(config.mongo_timeout * 1000)
        try:
            self.client: MongoClient = MongoClient(
                config.mongo_uri, tz_aware=True, appname="hybrid", serverSelectionTimeoutMS=ms,
                connectTimeoutMS=ms, socketTimeoutMS=ms)
        except (ValueError, ConfigurationError) as exc:
            raise UsageError(self.scrub(f"invalid MongoDB URI {redact(config.mongo_uri)}: "
                                        f"{exc}")) from exc
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
        with briefly(), contextlib.suppress(PyMongoError):
            self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, PyMongoError):
            raise StoreError(self.scrub(f"MongoDB: {type(exc).__name__}: {exc}")[:1000]
                             ) from exc

    def scrub(self, text: str) -> str:
        return scrub(text, self.config.mongo_uri)

    # ---- retries ---------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T], best_effort: bool = False) -> T:
        """`fn()`, retried with backoff on transient errors (lost connection, stepdown, a
        restart) for `mongo_retry_seconds` of wall-clock time; then `StoreError`.
        `best_effort`: one short attempt (cleaning up after the server was lost)."""
        config = self.config
        budget = 0.0 if best_effort else config.mongo_retry_seconds
        limit = min(config.mongo_timeout, _BEST_EFFORT_SECONDS) if best_effort else \
            config.mongo_timeout
        try:
            return call_within(what, fn, budget, limit, self.scrub)
        except PyMongoError as exc:
            if transient(exc):
                message = self.scrub(f"{type(exc).__name__}: {exc}")
                raise StoreError(f"lost MongoDB at {self.where} while {what}: still failing "
                                 f"after {budget:g}s ({message[:300]})") from exc
            raise

    # ---- reading ---------------------------------------------------------------------------
    def estimated_count(self) -> int:
        return self.call("counting articles", self.articles.estimated_document_count)

    def scan(self, after: Any = None, until: Any = None, extra: Sequence[str] = ()
             ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(article, owned) in `_id` order, `_id` in (after, until] (None: unbounded).
        `article` is `_id`, the text fields and the `extra` fields as read; `owned` our
        fields as stored ({} if never tagged). One cursor (paging is slow on some servers),
        read a batch at a time, each batch a retried call; after a lost connection or a
        restart it reopens past the last `_id` read. Every `_id` must have one BSON type:
        `_id` ranges compare in type."""
        size = self.config.batch_size
        wanted = [*text_fields(self.config), *extra,
                  *([] if self.separate else self._owned_fields())]
        projection = dict.fromkeys(wanted, 1)
        cursor: Cursor | None = None
        last = after

        def fetch() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
            nonlocal cursor
            try:
                if cursor is None:
                    cursor = self.articles.find(_id_range(last, until), projection,
                                                sort=[("_id", 1)], batch_size=size)
                chunk = list(islice(cursor, size))
                return chunk, self._owned(chunk)
            except PyMongoError:
                cursor = None
                raise

        try:
            while True:
                chunk, owned = self.call("reading articles", fetch)
                if not chunk:
                    return
                last = chunk[-1]["_id"]
                for article in chunk:
                    yield article, owned.get(id_key(article["_id"]), {})
        finally:
            if cursor is not None:
                with briefly(), contextlib.suppress(PyMongoError):
                    cursor.close()

    def ranges(self, after: Any, size: int) -> list[tuple[Any, Any]]:
        """Consecutive `_id` ranges (after, until] of `size` articles each, from `after` on;
        the last one is (after, None]: to the end, articles added meanwhile included. One
        pass over the `_id`s (on MongoDB, over the `_id` index alone)."""
        starts = [after, *self.call("reading article ids", lambda: [
            d["_id"] for i, d in enumerate(self.articles.find(
                _id_range(after, None), {"_id": 1}, sort=[("_id", 1)], batch_size=10_000), 1)
            if i % size == 0])]
        return list(zip(starts, [*starts[1:], None], strict=True))

    def _owned_fields(self) -> list[str]:
        return [self.config.categories_field, self.config.tags_field, STATE]

    def _ours(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Our fields of `doc`, under their configured names (a dotted one read nested)."""
        return {name: value for name in self._owned_fields()
                if (value := read_field(doc, name)) is not None}

    def _with_ours(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, **self._ours(doc)}

    def _owned(self, chunk: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Our fields of each article of `chunk`, by `id_key`, taken out of the article."""
        if self.separate:
            found = self.labels.find({"_id": {"$in": [a["_id"] for a in chunk]}})
            return {id_key(doc["_id"]): self._ours(doc) for doc in found}
        owned = {id_key(a["_id"]): self._ours(a) for a in chunk}
        for a in chunk:
            for name in self._owned_fields():
                a.pop(name, None)
        return owned

    def label_records(self) -> list[dict[str, Any]]:
        """Articles with manual labels or a teacher's (`hybrid.teacher`), as records: `_id`,
        the text fields, and our fields as stored."""
        owned = self._owned_fields()
        text = text_fields(self.config)
        if not self.separate:
            return [self._with_ours(d) for d in self.call("reading labelled articles",
                    lambda: list(self.articles.find(LABELLED, dict.fromkeys(text + owned, 1))))]
        found = {id_key(d["_id"]): d for d in self.call("reading labels", lambda: list(
            self.labels.find(LABELLED, dict.fromkeys(owned, 1))))}
        records = []
        for chunk in chunked(found.values(), self.config.batch_size):
            for article in self.call("reading labelled articles", lambda c=chunk: list(
                    self.articles.find({"_id": {"$in": [d["_id"] for d in c]}},
                                       dict.fromkeys(text, 1)))):
                records.append({**article, **self._ours(found[id_key(article["_id"])])})
        return records

    def suggestions(self, below: float | None, limit: int | None) -> list[dict[str, Any]]:
        """Labels the nightly job stored, least sure first, never manual ones; each with the
        article's title."""
        query: dict[str, Any] = {**NOT_MANUAL, f"{STATE}.confidence": {"$exists": True}}
        if below is not None:
            query[f"{STATE}.confidence"] = {"$lt": below}
        owned = self.call("reading suggestions", lambda: list(self.labels.find(
            query, sort=[(f"{STATE}.confidence", 1), ("_id", 1)], limit=limit or 0)))
        title = self.config.title_field
        titles = {id_key(d["_id"]): read_field(d, title) or "" for d in self.call(
            "reading titles", lambda: list(self.articles.find(
                {"_id": {"$in": [d["_id"] for d in owned]}}, {title: 1})))}
        return [{**self._with_ours(doc), "title": titles.get(id_key(doc["_id"]), "")}
                for doc in owned]

    def tagged(self, limit: int) -> list[dict[str, Any]]:
        """The first articles in `_id` order that are not manual, as stored."""
        return self.call("reading articles", lambda: list(self.articles.find(
            {f"{STATE}.source": {"$ne": "manual"}}, sort=[("_id", 1)]).limit(limit)))

    def count_labelled(self, names: Sequence[str]) -> dict[str, int]:
        """Articles whose categories hold any of `names`, and how many of them are manual."""
        query = {self.config.categories_field: {"$in": list(names)}}
        return {"articles": self.call("counting", lambda: self.labels.count_documents(query)),
                "manual": self.call("counting", lambda: self.labels.count_documents(
                    {"$and": [query, MANUAL]}))}

    # ---- writing labels ----------------------------------------------------------------------
    def write(self, writes: list[Write]) -> WriteOutcome:
        """One unordered bulk write; safe to repeat, so a transient error retries all of it."""
        if not writes:
            return WriteOutcome()
        ops = [UpdateOne(self._guard(w), self._update(w), upsert=self.separate)
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

    def _guard(self, w: Write) -> dict[str, Any]:
        guard = {"_id": w.article["_id"], **NOT_MANUAL}
        if not self.separate and w.categories is not None:
            # the text must still be what the labels were computed from (a failure writes no
            # labels, and its text may be of any type: compared, a value can act as a query)
            guard.update({name: read_field(w.article, name) for name in text_fields(self.config)})
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

    def find_ids(self, candidates: Sequence[Any]) -> list[Any]:
        """The `_id`s of the articles whose `_id` is one of `candidates`."""
        return [d["_id"] for d in self.call("finding the article", lambda: list(
            self.articles.find({"_id": {"$in": list(candidates)}}, {"_id": 1}, limit=10)))]

    def set_manual(self, key: Any, categories: list[str], tags: list[str] | None) -> None:
        """A person's labels: runs never overwrite them, and training learns from them."""
        values: dict[str, Any] = {self.config.categories_field: categories,
                                  f"{STATE}.source": "manual", f"{STATE}.reviewed_at": now()}
        if tags is not None:
            values[self.config.tags_field] = tags
        self.call("writing manual labels", lambda: self.labels.update_one(
            {"_id": key}, {"$set": values}, upsert=self.separate))

    def set_teacher(self, key: Any, label: dict[str, Any]) -> bool:
        """A teacher's label for one article, as `hybrid.teacher`; never on a manual article
        (False then: the person's labels win)."""
        try:
            result = self.call("writing a teacher label", lambda: self.labels.update_one(
                {"_id": key, **NOT_MANUAL}, {"$set": {f"{STATE}.teacher": label}},
                upsert=self.separate))
        except DuplicateKeyError:  # the upsert met a manual label: left alone
            return False
        return bool(result.matched_count or result.upserted_id is not None)

    def relabel_manual(self, names: Sequence[str], move: Callable[[list[str]], list[str]],
                       dry_run: bool = False) -> int:
        """Move the manual labels holding any of `names` through `move`. An article left with
        no label loses its manual mark, so the next run tags it. Returns how many moved."""
        name = self.config.categories_field
        docs = self.call("reading manual labels", lambda: list(self.labels.find(
            {"$and": [{name: {"$in": list(names)}}, MANUAL]}, {name: 1})))
        ops = []
        for doc in docs:
            stored = read_field(doc, name)
            labels = move(stored)
            update: dict[str, Any] = {"$set": {name: labels}}
            if not labels:
                update["$unset"] = {f"{STATE}.source": "", f"{STATE}.content_hash": ""}
            ops.append(UpdateOne({"_id": doc["_id"], name: stored}, update))
        if ops and not dry_run:
            self.call("relabelling manual articles", lambda: self.labels.bulk_write(ops))
        return len(ops)

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
