"""The nightly job over a MongoDB collection: select → predict → refine → write → report.

It scans the collection once in `_id` order. Manual articles are skipped; unchanged ones
(same content hash as when tagged) are counted and skipped; the rest go through the
`Predictor` in batches, and each batch is written with guarded bulk updates, after which the
run report in `hybrid_runs` records the checkpoint (the last `_id` done). A run that dies
leaves its report unfinished; the next run with the same selection starts after its
checkpoint, so nothing is lost and nothing is tagged twice for the same text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bson import ObjectId

from hybrid.article import Article, parse_article
from hybrid.model import HybridModel, Prediction
from hybrid.pipeline import Predictor
from hybrid.store import Store, Write, content_hash, is_manual, now

COUNTS = ("seen", "tagged", "unchanged", "skipped_manual", "failed", "low_confidence",
          "conflicts")
MAX_ERRORS = 1000  # kept in a run report; more are only counted
log = logging.getLogger(__name__)
Refine = Callable[[list[tuple[Article, Prediction]]], list[Prediction]]


@dataclass(frozen=True)
class Selection:
    """Which articles a run tags. Never manual ones. Always new ones and those whose text
    changed since they were tagged. With `retag_before`, also those last tagged before it:
    `--since DATE`, and `--all`, which is "since this job began", so a resumed `--all`
    skips what it already did. Another mode is a new `mode` and a line in `wants`."""

    mode: str = "new"  # "new" | "since" | "all" | "affected"
    retag_before: datetime | None = None
    limit: int | None = None
    # "affected" (after a taxonomy change): also articles holding a name not in this list
    authorized: frozenset[str] = frozenset()

    def wants(self, state: dict[str, Any], text_hash: str,
              categories: Any = None) -> str:
        """"manual", "unchanged" or "tag"."""
        if is_manual(state):
            return "manual"
        if state.get("content_hash") != text_hash:
            return "tag"
        if self.mode == "affected":
            stored = categories if isinstance(categories, list) else [categories]
            if not {c for c in stored if c} <= self.authorized:
                return "tag"
        tagged_at = state.get("tagged_at")
        if self.retag_before is not None and not (
                isinstance(tagged_at, datetime) and tagged_at >= self.retag_before):
            return "tag"
        return "unchanged"

    def resumes(self, run: dict[str, Any]) -> bool:
        """An unfinished run of the same selection is continued, not started over."""
        before = run.get("selection", {})
        return (run.get("status") != "completed" and before.get("mode") == self.mode
                and (self.mode != "since" or before.get("retag_before") == self.retag_before))

    def document(self) -> dict[str, Any]:
        return {"mode": self.mode, "retag_before": self.retag_before, "limit": self.limit}


@dataclass
class RunReport:
    """One run, as stored in `hybrid_runs` (rewritten with the checkpoint after each batch)."""

    collection: str
    target: str
    model: str
    taxonomy_fingerprint: str
    selection: Selection
    workers: int = 1
    dry_run: bool = False
    id: ObjectId = field(default_factory=ObjectId)
    status: str = "running"  # then "completed", "failed" or "interrupted"
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None
    resumed_from: ObjectId | None = None
    checkpoint: Any = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    categories: Counter = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    llm: dict[str, Any] | None = None  # calls, tokens, cost, blocked: when an LLM is on
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def processed(self) -> int:
        return self.counts["tagged"] + self.counts["failed"]

    @property
    def articles_per_second(self) -> float:
        return round(self.processed / max(self.seconds, 1e-9), 1)

    @property
    def failure_rate(self) -> float:
        return self.counts["failed"] / max(self.processed, 1)

    def fail(self, article_id: Any, message: str) -> None:
        self.counts["failed"] += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"_id": article_id, "error": message[:500]})
        log.warning("event=article_failed run=%s article=%s error=%r", self.id, article_id,
                    message[:200])

    def tick(self) -> None:
        self.seconds = round(time.perf_counter() - self._clock, 2)

    def summary(self) -> str:
        c = self.counts
        top = ", ".join(f"{name} {n}" for name, n in self.categories.most_common(5))
        return (f"run {self.id} {'dry run ' if self.dry_run else ''}{self.status}: "
                f"seen {c['seen']}, tagged {c['tagged']}, unchanged {c['unchanged']}, "
                f"skipped-manual {c['skipped_manual']}, failed {c['failed']}, "
                f"low-confidence {c['low_confidence']}, conflicts {c['conflicts']} in "
                f"{self.seconds:.1f}s ({self.articles_per_second}/s)"
                + (f"; categories: {top}" if top else ""))

    def document(self) -> dict[str, Any]:
        return {
            "_id": self.id, "collection": self.collection, "target": self.target,
            "model": self.model, "taxonomy_fingerprint": self.taxonomy_fingerprint,
            "selection": self.selection.document(), "workers": self.workers,
            "host": socket.gethostname(), "pid": os.getpid(), "status": self.status,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "resumed_from": self.resumed_from, "checkpoint": self.checkpoint,
            "counts": dict(self.counts),
            "categories": [{"category": name, "count": n}  # a list: names may hold "." or "$"
                           for name, n in self.categories.most_common()],
            "errors": self.errors, "errors_omitted": self.counts["failed"] - len(self.errors),
            "seconds": self.seconds, "articles_per_second": self.articles_per_second,
            "failure_rate": round(self.failure_rate, 4), "llm": self.llm,
        }


def keep_model_answers(pairs: list[tuple[Article, Prediction]]) -> list[Prediction]:
    return [prediction for _, prediction in pairs]


def run(store: Store, model_dir: str | Path, selection: Selection, *, workers: int = 1,
        dry_run: bool = False, refine: Refine = keep_model_answers,
        llm_stats: Callable[[], dict[str, Any]] | None = None,
        progress: Callable[[int], object] = lambda n: None,
        show: Callable[[str], None] = print) -> RunReport:
    """Tag the selected articles of `store`'s collection; raises `LeaseHeld` if another run is
    on it, `StoreError` if MongoDB stays unreachable (the checkpoint is kept either way).

    `refine` sees each batch's (article, prediction) pairs after the model and returns the
    predictions to write: the place where the LLM revises low-confidence ones (a prediction
    it replaced has `source` "llm"). `--dry-run` takes no lease and writes nothing; `show`
    gets one JSON line per article whose labels would change.
    """
    config = store.config
    manifest = HybridModel.read_manifest(model_dir)
    report = RunReport(collection=config.mongo_collection,
                       target=config.results_collection or config.mongo_collection,
                       model=Path(model_dir).name,
                       taxonomy_fingerprint=manifest["taxonomy_fingerprint"],
                       selection=selection, workers=workers, dry_run=dry_run)
    job = _Job(store, report, model_dir, refine, llm_stats, progress, show)
    if dry_run:
        job.tag()
        report.status = "completed"
        report.tick()
        return report
    store.take_lease(report.id)
    try:
        store.close_dead_runs(report.id)
        previous = store.last_run()
        if previous is not None and selection.resumes(previous):
            report.resumed_from = previous["_id"]
            report.checkpoint = previous.get("checkpoint")
            report.selection = replace(selection,
                                       retag_before=previous["selection"]["retag_before"])
            log.info("event=resume run=%s from_run=%s checkpoint=%s", report.id,
                     previous["_id"], report.checkpoint)
        store.save_run(report.document())
        log.info("event=run_started run=%s collection=%s target=%s mode=%s model=%s",
                 report.id, report.collection, report.target, selection.mode, report.model)
        job.tag()
        report.status = "completed"
        report.finished_at = now()
        report.tick()
        store.save_run(report.document())
        store.release_lease(report.id)
    except BaseException as exc:
        report.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        report.finished_at = now()
        report.tick()
        with contextlib.suppress(Exception):  # best effort: the server may be the problem
            store.save_run(report.document(), retry=False)
        with contextlib.suppress(Exception):
            store.release_lease(report.id, retry=False)
        raise
    log.info("event=run_finished run=%s %s", report.id,
             " ".join(f"{k}={v}" for k, v in report.counts.items()))
    return report


@dataclass
class _Item:
    article: dict[str, Any]  # `_id` and the text fields as read
    text_hash: str
    owned: dict[str, Any]  # our fields as stored before this run


class _Job:
    def __init__(self, store: Store, report: RunReport, model_dir: str | Path, refine: Refine,
                 llm_stats: Callable[[], dict[str, Any]] | None,
                 progress: Callable[[int], object], show: Callable[[str], None]) -> None:
        self.store, self.report, self.model_dir = store, report, model_dir
        self.config = store.config
        self.refine, self.llm_stats, self.progress, self.show = refine, llm_stats, progress, show
        self.in_flight: deque[list[_Item]] = deque()  # batches handed to the predictor
        self.renewed = time.monotonic()

    def tag(self) -> None:
        with Predictor(self.model_dir, self.config, self.report.workers) as predictor:
            for _, predictions in predictor.map(self._batches()):
                items = self.in_flight.popleft()
                self._write(items, predictions)
                self._checkpoint(items[-1].article["_id"])

    def _batches(self) -> Iterator[list[dict[str, Any]]]:
        """Record batches for the predictor; what is skipped is only counted."""
        report, size, limit = self.report, self.config.batch_size, self.report.selection.limit
        batch: list[_Item] = []
        queued = 0
        with contextlib.closing(self.store.scan(after=report.checkpoint)) as scan:
            for article, owned in scan:
                report.counts["seen"] += 1
                self.progress(1)
                state = owned.get("hybrid")
                text_hash = content_hash(article, self.config)
                verdict = report.selection.wants(state if isinstance(state, dict) else {},
                                                 text_hash, owned.get(self.config.categories_field))
                if verdict == "manual":
                    report.counts["skipped_manual"] += 1
                elif verdict == "unchanged":
                    report.counts["unchanged"] += 1
                else:
                    batch.append(_Item(article, text_hash, owned))
                    queued += 1
                if batch and (len(batch) == size or queued == limit):
                    self.in_flight.append(batch)
                    yield [item.article for item in batch]
                    batch = []
                self._heartbeat(article["_id"], idle=not batch and not self.in_flight)
                if queued == limit:
                    return
        if batch:
            self.in_flight.append(batch)
            yield [item.article for item in batch]

    def _write(self, items: list[_Item], predictions: list[Prediction]) -> None:
        report, config = self.report, self.config
        ok = [i for i, p in enumerate(predictions) if not p.error]
        refined = self.refine([(parse_article(items[i].article, config), predictions[i])
                               for i in ok])
        if self.llm_stats is not None:
            report.llm = self.llm_stats()
        for i, prediction in zip(ok, refined, strict=True):
            predictions[i] = prediction
        tagged_at = now()
        labels: list[tuple[_Item, Write]] = []
        failures: list[tuple[_Item, Write]] = []
        for item, p in zip(items, predictions, strict=True):
            state = {"model": report.model, "taxonomy_fingerprint": report.taxonomy_fingerprint,
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
        else:
            outcome = self.store.write([w for _, w in labels])
            report.counts["tagged"] += outcome.written
            report.counts["conflicts"] += outcome.conflicts
            report.counts["conflicts"] += self.store.write([w for _, w in failures]).conflicts
            for i, message in outcome.errors.items():
                report.fail(labels[i][1].article["_id"], f"write refused: {message}")
            labels = [pair for i, pair in enumerate(labels) if i not in outcome.errors]
        for _, w in labels:
            report.categories.update(w.categories or [])
            report.counts["low_confidence"] += w.state["confidence"] < config.low_confidence

    def _show(self, pairs: list[tuple[_Item, Write]]) -> None:
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
            self.show(json.dumps(row, ensure_ascii=False, default=str))

    def _checkpoint(self, last_id: Any) -> None:
        """Everything up to `last_id` is done: record it, and keep the lease."""
        report = self.report
        report.checkpoint = last_id
        report.tick()
        if report.dry_run:
            return
        self.store.save_run(report.document())
        self.store.renew_lease(report.id)
        self.renewed = time.monotonic()
        log.info("event=checkpoint run=%s checkpoint=%s %s", report.id, last_id,
                 " ".join(f"{k}={v}" for k, v in report.counts.items()))

    def _heartbeat(self, last_id: Any, idle: bool) -> None:
        """In long stretches with nothing to tag, keep the lease; when nothing is in flight,
        also move the checkpoint on, so a resumed run does not rescan them."""
        if self.report.dry_run or time.monotonic() - self.renewed < self.config.lease_seconds / 4:
            return
        if idle:
            self._checkpoint(last_id)
        else:
            self.store.renew_lease(self.report.id)
            self.renewed = time.monotonic()


def _ranked(scores: dict[str, float]) -> list[dict[str, Any]]:
    """Best first, as a list: category names may hold "." or "$", which keys may not."""
    return [{"category": name, "score": score}
            for name, score in sorted(scores.items(), key=lambda kv: -kv[1])]
