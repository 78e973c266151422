"""One stretch of a collection in `_id` order, tagged: scan → select → (predict) → refine →
guarded write, counted into a run report.

Both engines of the nightly job run this. The local engine runs one partition, from the
checkpoint to the end, with a process pool predicting; each Ray worker runs the partitions
it is handed, predicting in its own process. Writes are the store's guarded writes either
way, so the rules (our fields only, never a manual article, never labels for text that
changed since it was read) hold whatever engine wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from typing import Any

from hybrid.batch.predictor import Refine, keep_model_answers, refine_batch
from hybrid.ingest.records import to_json
from hybrid.learn.prediction import Prediction
from hybrid.mongo.marks import lock_problem
from hybrid.mongo.runs import RunReport
from hybrid.mongo.store import Store, Write, WriteOutcome, content_hash, now


@dataclass
class Item:
    article: dict[str, Any]  # `_id` and the text fields as read
    text_hash: str
    owned: dict[str, Any]  # our fields as stored before this run


class Partition:
    """The articles after `after` up to `until` (inclusive; None: to the end), at most
    `limit` of them tagged. `batches()` yields what the selection wants tagged, counting
    the rest into `report`; `write()` stores a batch's predictions (or the teacher's labels,
    for an article a teacher labelled; `authorized`: the model's categories). Afterwards
    `last` is the last `_id` scanned and `complete` says whether the scan reached `until`."""

    def __init__(self, store: Store, report: RunReport, authorized: Iterable[str],
                 after: Any = None, until: Any = None,
                 limit: int | None = None, refine: Refine = keep_model_answers,
                 show: Callable[[str], None] = print,
                 progress: Callable[[int], object] = lambda n: None,
                 heartbeat: Callable[[Any, bool], None] = lambda last, empty: None) -> None:
        """`heartbeat(last_id, empty)` after every article scanned (`empty`: no batch is
        being filled); `show` gets the --dry-run lines."""
        self.store, self.report, self.config = store, report, store.config
        self.authorized = frozenset(authorized)
        self.after, self.until, self.limit = after, until, limit
        self.refine, self.show, self.progress, self.heartbeat = refine, show, progress, heartbeat
        self.last: Any = None
        self.queued = 0
        self.complete = False
        self._pending: tuple[list[Write], Future] | None = None  # writes in the background

    def batches(self) -> Iterator[list[Item]]:
        report, size, limit = self.report, self.config.batch_size, self.limit
        batch: list[Item] = []
        with contextlib.closing(self.store.scan(self.after, self.until)) as scan:
            for article, owned in scan:
                self.last = article["_id"]
                report.counts["seen"] += 1
                self.progress(1)
                state = owned.get("hybrid")
                problem = lock_problem(state)
                state = state if isinstance(state, dict) else {}
                text_hash = content_hash(article, self.config)
                verdict = report.selection.wants(state, text_hash,
                                                 owned.get(self.config.categories_field))
                if problem:
                    report.fail(article["_id"], problem)
                elif verdict == "manual":
                    report.counts["skipped_manual"] += 1
                elif verdict == "unchanged":
                    resumed = state.get("run") in report.resumes
                    report.counts["resumed" if resumed else "unchanged"] += 1
                else:
                    batch.append(Item(article, text_hash, owned))
                    self.queued += 1
                if batch and (len(batch) == size or self.queued == limit):
                    yield batch
                    batch = []
                self.heartbeat(article["_id"], not batch)
                if self.queued == limit:
                    return
        if batch:
            yield batch
        self.complete = True

    def write(self, items: list[Item], predictions: list[Prediction],
              background: Executor | None = None) -> None:
        """Store a batch's labels with guarded writes. With `background`, the writes run
        there while the caller predicts the next batch, and their outcome is counted by the
        next `write` or by `flush()`, which waits for it. The report changes only in the
        calling thread."""
        report = self.report
        predictions = refine_batch(self.refine, [item.article for item in items], predictions,
                                   self.config)
        tagged_at = now()
        labels: list[tuple[Item, Write]] = []
        failures: list[tuple[Item, Write]] = []
        for item, p in zip(items, predictions, strict=True):
            p = self._teacher(item, p)
            state = {"model": report.model, "run": report.id,
                     "taxonomy_fingerprint": report.taxonomy_fingerprint,
                     "source": p.source, "content_hash": item.text_hash,
                     "tagged_at": tagged_at, "flags": p.flags}
            if p.llm:
                state["llm"] = p.llm
            if p.error:
                failures.append((item, Write(item.article, {**state, "error": p.error})))
                report.fail(item.article["_id"], p.error)
            else:
                labels.append((item, Write(item.article, {**state, "confidence": p.confidence,
                                                          "scores": _ranked(p.scores)},
                                           p.categories, p.tags)))
        if report.dry_run:
            self._show(labels + failures)
            report.counts["tagged"] += len(labels)
            self._tally([w for _, w in labels])
            return
        self.flush()
        writes, errors = [w for _, w in labels], [w for _, w in failures]
        if background is None:
            self._count(writes, *self._store(writes, errors))
        else:
            self._pending = (writes, background.submit(self._store, writes, errors))

    def flush(self) -> None:
        """Wait for the writes in the background, and count them."""
        if self._pending is not None:
            writes, future = self._pending
            self._pending = None
            self._count(writes, *future.result())

    def _store(self, writes: list[Write], failures: list[Write]
               ) -> tuple[WriteOutcome, WriteOutcome]:
        return self.store.write(writes), self.store.write(failures)

    def _count(self, writes: list[Write], outcome: WriteOutcome, failed: WriteOutcome) -> None:
        report = self.report
        report.counts["tagged"] += outcome.written
        report.counts["conflicts"] += outcome.conflicts + failed.conflicts
        for i, message in outcome.errors.items():
            report.fail(writes[i].article["_id"], f"write refused: {message}")
        self._tally([w for i, w in enumerate(writes) if i not in outcome.errors])

    def _tally(self, writes: list[Write]) -> None:
        for w in writes:
            self.report.categories.update(w.categories or [])
            self.report.counts["low_confidence"] += \
                w.state["confidence"] < self.config.low_confidence

    def _teacher(self, item: Item, p: Prediction) -> Prediction:
        """An article a teacher labelled (`hybrid bootstrap`), for its text as it is now,
        shows the teacher's labels: they were paid for, and beat the model's guess."""
        state = item.owned.get("hybrid")
        teacher = state.get("teacher") if isinstance(state, dict) else None
        if p.error or not isinstance(teacher, dict) or \
                teacher.get("content_hash") != item.text_hash:
            return p
        categories = [c for c in teacher.get("categories") or [] if c in self.authorized]
        if not categories:
            return p
        return replace(p, categories=categories[:self.config.max_categories],
                       tags=list(teacher.get("tags") or p.tags), source="llm")

    def _show(self, pairs: list[tuple[Item, Write]]) -> None:
        """--dry-run: one JSON line per article whose labels would change, or that fails."""
        cat, tag = self.config.categories_field, self.config.tags_field
        for item, w in pairs:
            row: dict[str, Any] = {"_id": item.article["_id"]}
            if w.categories is None:
                row["error"] = w.state["error"]
            elif item.owned.get(cat) == w.categories and item.owned.get(tag) == w.tags:
                continue
            else:
                row.update({cat: w.categories, tag: w.tags,
                            "was": {cat: item.owned.get(cat), tag: item.owned.get(tag)}})
            self.show(to_json(row))


def _ranked(scores: dict[str, float]) -> list[dict[str, Any]]:
    """Best first, as a list: category names may hold "." or "$", which keys may not."""
    return [{"category": name, "score": score}
            for name, score in sorted(scores.items(), key=lambda kv: -kv[1])]
