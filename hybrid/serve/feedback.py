"""People's labels from the page or a CMS, stored exactly as `review import` stores them
(the same functions of `hybrid.labels.review`): manual labels on the article in MongoDB,
which runs never overwrite and `train --label-source manual` learns from, or lines of a
label ledger (`--labels`, as `bootstrap --labels` keeps them). And the review queue: the
articles `review export --select uncertain` would pick, computed by a worker (it needs the
model), once per model, then one at a time on the page.

`hybrid.labels.review` brings scikit-learn with it; the front process imports it in a
thread, the first time it is needed, so start-up and suggestions never wait for it.
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from hybrid.config import Config
from hybrid.errors import HybridError, StoreError
from hybrid.serve.generation import Generation
from hybrid.serve.pool import Pool
from hybrid.serve.problems import Problem

MAX_TAGS = 20
REVIEW_ROWS = 100  # as `review export --select uncertain` chooses them, without --limit
MAX_LABEL_CHARS = 200


async def review_module() -> Any:
    return await asyncio.to_thread(importlib.import_module, "hybrid.labels.review")


class Feedback:
    def __init__(self, config: Config, labels: str | None) -> None:
        self.config = config
        self.labels = labels
        self._store: Any = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str | None:
        if self.labels:
            return str(Path(self.labels))
        return "mongodb" if self.config.mongo_uri else None

    async def save(self, payload: Any, generation: Generation) -> dict[str, Any]:
        if self.where is None:
            raise Problem(503, "feedback has nowhere to go: start `hybrid serve` with "
                               "--labels FILE, or with a MongoDB collection (MONGODB_URI)")
        article_id, categories, tags = _parse(payload)
        review = await review_module()
        try:
            fix = review.correction(article_id, categories, tags, generation.taxonomy)
        except ValueError as exc:
            raise Problem(422, f"article {article_id!r}, field 'categories': {exc}",
                          article=article_id, field="categories") from exc
        async with self._lock:  # one writer: ledger lines never interleave
            try:
                errors = await asyncio.to_thread(self._write, review, fix)
            except StoreError as exc:  # its message, without the advice for `run`
                raise Problem(503, exc.message, article=article_id) from exc
        if errors:
            raise Problem(404, f"article {article_id!r}: {errors[fix.id]}", article=article_id)
        return {"id": article_id, "categories": fix.categories, "tags": fix.tags,
                "source": "manual", "stored": self.where}

    def _write(self, review: Any, fix: Any) -> dict[str, str]:
        if self.labels:
            from hybrid.labels.ledger import FileLedger

            review.write_to_ledger(FileLedger(self.labels), [fix])
            return {}
        if self._store is None:
            from hybrid.mongo.store import Store

            self._store = Store(self.config)
        return review.write_to_store(self._store, [fix])

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _parse(payload: Any) -> tuple[str, list[str], list[str]]:
    """(id, categories, tags) of a feedback body, or a 422 naming the field."""
    if not isinstance(payload, dict):
        raise Problem(422, f"field '<body>': expected an object, got {type(payload).__name__}",
                      field="<body>")
    raw_id = payload.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise Problem(422, "field 'id': the article's id (text or a number) is required",
                      field="id")
    article_id = str(raw_id).strip()
    categories = _strings(payload.get("categories"), "categories", article_id)
    if not categories:
        raise Problem(422, f"article {article_id!r}, field 'categories': at least one "
                           "category is required", article=article_id, field="categories")
    tags = _strings(payload.get("tags"), "tags", article_id)
    if len(tags) > MAX_TAGS:
        raise Problem(422, f"article {article_id!r}, field 'tags': at most {MAX_TAGS} tags",
                      article=article_id, field="tags")
    return article_id, categories, tags


def _strings(value: Any, name: str, article_id: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Problem(422, f"article {article_id!r}, field {name!r}: expected a list of "
                           "strings", article=article_id, field=name)
    if any(len(v) > MAX_LABEL_CHARS for v in value):
        raise Problem(422, f"article {article_id!r}, field {name!r}: a label over "
                           f"{MAX_LABEL_CHARS} characters", article=article_id, field=name)
    return [v.strip() for v in value if v.strip()]


class ReviewQueue:
    """The uncertain articles of one model, computed once by a worker and then handed out;
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
        """At most `wait` seconds; then 503 (computing), and the next call gets them."""
        if not self.available:
            raise Problem(503, "no articles to review: start `hybrid serve` with a MongoDB "
                               "collection (MONGODB_URI), or --data FILE")
        task = self._rows.get(generation.number)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.create_task(self._compute())
            self._rows = {generation.number: task}
        try:
            async with asyncio.timeout(wait):
                rows = await asyncio.shield(task)
        except TimeoutError:
            raise Problem(503, "the review queue is being computed; try again in a minute",
                          headers={"Retry-After": "30"}) from None
        return [r for r in rows if r["id"] not in self._saved][:limit]

    async def _compute(self) -> list[dict[str, Any]]:
        worker = await self.pool.take()
        try:
            rows = await worker.review(self.data, self.labels, REVIEW_ROWS)
        except BrokenProcessPool:
            self.pool.lost(worker)
            raise Problem(503, "the worker died while choosing articles to review") from None
        except HybridError as exc:  # MongoDB unreachable, an unreadable --data file
            self.pool.give_back(worker)
            raise Problem(503, f"cannot choose articles to review: {exc.message}") from exc
        self.pool.give_back(worker)
        return rows

    def saved(self, article_id: str) -> None:
        self._saved.add(article_id)
