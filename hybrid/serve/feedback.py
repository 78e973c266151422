"""People's labels from the page or a CMS, checked and stored exactly as `review import`
checks and stores them (the same functions, `hybrid.labels.corrections`): manual labels on
the article in MongoDB, which runs never overwrite and `train --label-source manual` learns
from, or lines of a label ledger (`--labels`, as `bootstrap --labels` keeps them). And the
review queue: the articles `review export --select uncertain` would pick, once per model,
then handed out one at a time.

Both run in a worker (`save_correction`, `uncertain_rows`): it has the model, its taxonomy
and the ML stack loaded already, so the front process never imports them. A ledger write
holds the ledger's lock, as every writer's does: two workers' lines never interleave, and
while a bootstrap labels with the ledger, feedback is refused (503) rather than mixed in.

An article is named as everywhere else (`hybrid.ingest.ids`): a review row of a collection
carries its `_id` with its type, as canonical Extended JSON (which a page's JavaScript keeps
exact), and feedback sent with that `_id` labels that article and no other.
"""

from __future__ import annotations

import asyncio
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from hybrid.config import Config
from hybrid.errors import HybridError, StoreError
from hybrid.ingest.article import Article
from hybrid.ingest.ids import id_key, json_key, shown, typed_json
from hybrid.serve.generation import Generation
from hybrid.serve.pool import Pool
from hybrid.serve.problems import Problem

MAX_TAGS = 20
MAX_LABEL_CHARS = 200
LEDGER_WAIT = 1.0  # seconds a worker waits for another writer of the ledger (it holds
# the lock for one line; a bootstrap holds it for its whole run)
REVIEW_ROWS = 100  # as `review export --select uncertain` chooses them, without --limit
_store: dict[str, Any] = {}  # in a worker: its connection to the collection, once opened


# ---- in a worker ----------------------------------------------------------------------------
def save_correction(article_id: str, typed: bool, categories: list[str], tags: list[str],
                    labels: str | None) -> dict[str, Any]:
    """Check and store one person's labels, as `review import` does (the same functions);
    the answer, or {"status", "error", "field"}. `typed`: `article_id` is the key of a typed
    `_id`, else a bare text that must name one article."""
    from hybrid.errors import LeaseHeld
    from hybrid.labels import corrections
    from hybrid.labels.ledger import FileLedger
    from hybrid.serve.workers import loaded

    model, config = loaded()
    named = f"article {shown(article_id)!r}"
    try:
        fix = corrections.correction(article_id, categories, tags, model.taxonomy,
                                config.max_categories, typed)
    except corrections.Refused as exc:
        return {"status": 422, "field": exc.field, "error": f"{named}, {exc}"}
    answer = {"id": article_id, "categories": fix.categories, "tags": fix.tags,
              "source": "manual"}
    if labels:
        try:
            corrections.write_to_ledger(FileLedger(labels), [fix], LEDGER_WAIT)
        except LeaseHeld:
            return {"status": 503, "retry": 60, "error": f"{named}: a bootstrap is labelling "
                    f"with {labels} (it holds the ledger's lock); nothing was stored: send "
                    "it again once the bootstrap is done"}
        return {**answer, "stored": "ledger"}
    try:
        stored = corrections.store_correction(_open_store(config), fix)
    except StoreError as exc:  # its message, without the advice meant for `run`
        return {"status": 503, "error": exc.message}
    except corrections.Ambiguous as exc:
        return {"status": 422, "field": "id", "error": f"{named}: {exc}; none was labelled: "
                "send its `_id` with its type (Extended JSON: 1 is the number, \"1\" the "
                "string, {\"$oid\": \"…\"} an ObjectId)"}
    except corrections.Refused as exc:
        return {"status": 422, "field": exc.field, "error": f"{named}, {exc}"}
    except LookupError as exc:
        return {"status": 404, "error": f"{named}: {exc}"}
    return {**answer, "id": id_key(stored), "stored": "mongodb"}


def _open_store(config: Config) -> Any:
    from hybrid.mongo.store import Store

    if "store" not in _store:
        _store["store"] = Store(config)
    return _store["store"]


def uncertain_rows(data: str | None, labels: str | None, limit: int) -> list[dict[str, Any]]:
    """The articles `review export --select uncertain` picks, each with a short excerpt,
    every category's score and why each tag was given (as the page shows a suggestion);
    from a collection, with its `_id` as canonical Extended JSON, to send back as it is."""
    from dataclasses import asdict

    from hybrid.labels import review
    from hybrid.serve.explain import tag_reasons
    from hybrid.serve.workers import loaded

    model, config = loaded()
    articles = review.review_articles(config, data, labels)
    rows = review.chosen_rows(model, articles, "uncertain", limit)
    by_id = {a.id: a for a in articles}
    explained = model.predict([by_id[row.id] for row in rows], explain=True) if rows else []
    return [{**asdict(row), **({} if data else {"_id": typed_json(row.id)}),
             "excerpt": _excerpt(a := by_id[row.id]), "all_scores": p.scores,
             "tag_reasons": tag_reasons(p, f"{a.title}\n{a.description}\n{a.content}")}
            for row, p in zip(rows, explained, strict=True)]


def _excerpt(article: Article, chars: int = 300) -> str:
    """The start of the article as a reader sees it (not as the model reads it: its text
    is folded to half-width, which Chinese prose should not show)."""
    from selectolax.lexbor import LexborHTMLParser

    from hybrid.ingest.clean import render_markdown

    if article.description.strip():
        return article.description.strip()[:chars]
    root = LexborHTMLParser(render_markdown(article.content[:chars * 20])).body
    return " ".join((root.text(separator=" ") if root else "").split())[:chars]


# ---- in the front process -------------------------------------------------------------------
async def on_a_worker(pool: Pool, wait: float, fn: Any, *args: Any) -> Any:
    """`fn(*args)` on the next free worker (after the batch it has in hand, if any); 503 if
    none is free within `wait` seconds."""
    try:
        async with asyncio.timeout(wait):
            worker = await pool.take()
    except TimeoutError:
        raise Problem(503, f"no worker was free within {wait:g}s (serve_timeout)",
                      headers={"Retry-After": "5"}) from None
    try:
        return await worker.call(fn, *args)
    except BrokenProcessPool:
        pool.lost(worker)
        raise Problem(503, "the worker died; try again", headers={"Retry-After": "1"}
                      ) from None
    finally:  # whatever the call raised, or its request cancelled: never left busy
        if worker.busy:
            pool.give_back(worker)


class Feedback:
    def __init__(self, config: Config, labels: str | None, pool: Pool) -> None:
        self.config = config
        self.labels = str(Path(labels)) if labels else None
        self.pool = pool

    @property
    def where(self) -> str | None:
        """"ledger", "mongodb", or None: no feedback."""
        return "ledger" if self.labels else ("mongodb" if self.config.mongo_uri else None)

    async def save(self, payload: Any) -> dict[str, Any]:
        if self.where is None:
            raise Problem(503, "feedback has nowhere to go: start `hybrid serve` with "
                               "--labels FILE, or with a MongoDB collection (MONGODB_URI)")
        article_id, typed, categories, tags = _parse(payload)
        answer = await on_a_worker(self.pool, self.config.serve_timeout, save_correction,
                                   article_id, typed, categories, tags, self.labels)
        if "error" in answer:
            retry = {"Retry-After": str(answer["retry"])} if "retry" in answer else None
            raise Problem(answer["status"], answer["error"], article=article_id,
                          field=answer.get("field"), headers=retry)
        return answer


def _parse(payload: Any) -> tuple[str, bool, list[str], list[str]]:
    """(the article's key, typed, categories, tags) of a feedback body, or a 422 naming the
    field. The article is its `_id` with its type (Extended JSON, as a review row gives it),
    or `id`: a text (a key as the API writes ids, or a CMS's own id: it must name one
    article), or a number or object (Extended JSON, typed)."""
    if not isinstance(payload, dict):
        raise Problem(422, f"field '<body>': expected an object, got {type(payload).__name__}",
                      field="<body>")
    if "_id" in payload and "id" in payload:
        raise Problem(422, "fields 'id' and '_id': give the article's id once, as one of "
                           "them", field="_id")
    if "_id" in payload:
        raw = payload["_id"]
        if raw is None or isinstance(raw, list):
            raise Problem(422, "field '_id': the article's _id as Extended JSON (1, \"1\", "
                               "{\"$oid\": \"…\"}), not "
                               f"{'null' if raw is None else 'a list'}", field="_id")
        article_id, typed = json_key(raw), True
    else:
        raw = payload.get("id")
        if isinstance(raw, str) and raw.strip():
            article_id, typed = raw.strip(), False
        elif isinstance(raw, int | float | dict) and not isinstance(raw, bool):
            article_id, typed = json_key(raw), True  # a JSON value: Extended JSON
        else:
            raise Problem(422, "field 'id': the article's id (a text, or Extended JSON: a "
                               "number, {\"$oid\": \"…\"}), or its '_id', is required",
                          field="id")
    categories = _strings(payload.get("categories"), "categories", article_id)
    if not categories:
        raise Problem(422, f"article {shown(article_id)!r}, field 'categories': at least one "
                           "category is required", article=article_id, field="categories")
    tags = _strings(payload.get("tags"), "tags", article_id)
    if len(tags) > MAX_TAGS:
        raise Problem(422, f"article {shown(article_id)!r}, field 'tags': at most {MAX_TAGS} "
                           "tags", article=article_id, field="tags")
    return article_id, typed, categories, tags


def _strings(value: Any, name: str, article_id: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Problem(422, f"article {shown(article_id)!r}, field {name!r}: expected a list "
                           "of strings", article=article_id, field=name)
    if any(len(v) > MAX_LABEL_CHARS for v in value):
        raise Problem(422, f"article {shown(article_id)!r}, field {name!r}: a label over "
                           f"{MAX_LABEL_CHARS} characters", article=article_id, field=name)
    return [v.strip() for v in value if v.strip()]


class ReviewQueue:
    """The uncertain articles of one model, chosen once by a worker and then handed out;
    an article leaves the queue when its labels are saved."""

    def __init__(self, config: Config, data: str | None, labels: str | None,
                 pool: Pool) -> None:
        self.config = config
        self.data = data
        self.labels = labels
        self.pool = pool
        self._rows: dict[int, asyncio.Task] = {}  # by generation number
        self._saved: set[str] = set()

    @property
    def available(self) -> bool:
        return bool(self.data or self.config.mongo_uri)

    async def rows(self, limit: int, generation: Generation, wait: float
                   ) -> list[dict[str, Any]]:
        """At most `wait` seconds; then 503 (still choosing), and the next call gets them."""
        if not self.available:
            raise Problem(503, "no articles to review: start `hybrid serve` with a MongoDB "
                               "collection (MONGODB_URI), or --data FILE")
        task = self._rows.get(generation.number)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.create_task(self._choose())
            self._rows = {generation.number: task}
        try:
            async with asyncio.timeout(wait):
                rows = await asyncio.shield(task)
        except TimeoutError:
            raise Problem(503, "the review queue is being chosen; try again in a minute",
                          headers={"Retry-After": "30"}) from None
        return [r for r in rows if r["id"] not in self._saved][:limit]

    async def _choose(self) -> list[dict[str, Any]]:
        try:
            return await on_a_worker(self.pool, self.config.serve_timeout, uncertain_rows,
                                     self.data, self.labels, REVIEW_ROWS)
        except HybridError as exc:  # MongoDB unreachable, an unreadable --data file
            raise Problem(503, f"cannot choose articles to review: {exc.message}") from exc

    def saved(self, article_id: str) -> None:
        self._saved.add(article_id)
