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
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hybrid.batch.predictor import Predictor, Refine, keep_model_answers, refine_batch
from hybrid.ingest.records import to_json
from hybrid.learn.artifacts import read_manifest
from hybrid.learn.prediction import Prediction
from hybrid.llm.refine import open_refiner
from hybrid.llm.stats import LLMStats
from hybrid.mongo.lease import Lease
from hybrid.mongo.runs import RunLog, RunReport, Selection
from hybrid.mongo.store import Store, Write, content_hash, lock_problem, now
from hybrid.taxonomy.change import Migration

log = logging.getLogger("hybrid.batch")


def run(store: Store, model_dir: str | Path, selection: Selection, *, workers: int = 1,
        dry_run: bool = False, refine: Refine | None = None,
        progress: Callable[[int], object] = lambda n: None,
        show: Callable[[str], None] = print) -> RunReport:
    """Tag the selected articles of `store`'s collection; raises `LeaseHeld` if another run is
    on it, `StoreError` if MongoDB stays unreachable (the checkpoint is kept either way).

    `refine` sees each batch's (article, prediction) pairs after the model and returns the
    predictions to write; by default the LLM step the configuration asks for revises the
    low-confidence ones (a prediction it replaced has `source` "llm"). `--dry-run` takes no
    lease and writes nothing; `show` gets one JSON line per article whose labels would change.
    """
    if refine is not None:
        return _run(store, model_dir, selection, workers, dry_run, refine, None, progress, show)
    with open_refiner(store.config, model_dir) as refiner:
        if refiner is None:
            return _run(store, model_dir, selection, workers, dry_run, keep_model_answers,
                        None, progress, show)
        return _run(store, model_dir, selection, workers, dry_run, refiner.refine_pairs,
                    refiner.stats, progress, show)


def _run(store: Store, model_dir: str | Path, selection: Selection, workers: int,
         dry_run: bool, refine: Refine, llm: LLMStats | None, progress: Callable[[int], object],
         show: Callable[[str], None]) -> RunReport:
    config = store.config
    manifest = read_manifest(model_dir)
    report = RunReport(collection=config.mongo_collection,
                       target=config.results_collection or config.mongo_collection,
                       model=Path(model_dir).name,
                       taxonomy_fingerprint=manifest["taxonomy_fingerprint"],
                       selection=selection, workers=workers, dry_run=dry_run,
                       zero_shot=bool(manifest.get("zero_shot")))
    lease, runs = Lease(store, report.id), RunLog(store)
    job = _Job(store, report, lease, runs, model_dir, refine, llm, progress, show)
    if dry_run:
        report.relabelled_manual = _relabel_manual(store, manifest, selection, dry_run)
        job.tag()
        report.status = "completed"
        report.tick()
        return report
    lease.take()
    try:
        runs.close_dead(report.id)
        previous = runs.last()
        if previous is not None and selection.resumes(previous):
            report.resumed_from = previous["_id"]
            report.resumes = [*previous.get("resumes", []), previous["_id"]]
            report.checkpoint = previous.get("checkpoint")
            report.selection = replace(selection,
                                       retag_before=previous["selection"]["retag_before"])
            log.info("event=resume run=%s from_run=%s checkpoint=%s", report.id,
                     previous["_id"], report.checkpoint)
        runs.save(report)
        log.info("event=run_started run=%s collection=%s target=%s mode=%s model=%s",
                 report.id, report.collection, report.target, selection.mode, report.model)
        report.relabelled_manual = _relabel_manual(store, manifest, selection, dry_run)
        job.tag()
        report.status = "completed"
        report.finished_at = now()
        report.tick()
        runs.save(report)
        lease.release()
    except BaseException as exc:
        report.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        report.finished_at = now()
        report.tick()
        with contextlib.suppress(Exception):  # best effort: the server may be the problem
            runs.save(report, best_effort=True)
        with contextlib.suppress(Exception):
            lease.release(best_effort=True)
        raise
    log.info("event=run_finished run=%s %s", report.id,
             " ".join(f"{k}={v}" for k, v in report.counts.items()))
    return report


def _relabel_manual(store: Store, manifest: dict[str, Any], selection: Selection,
                    dry_run: bool) -> int:
    """`--retag affected` after `hybrid retrain`: manual labels under names the new list
    renamed or merged move with them (a rename keeps the reviewer's decision)."""
    migration = Migration.from_manifest(manifest)
    if selection.mode != "affected" or migration is None:
        return 0
    names = [stored for name in migration.changed for stored in migration.stored_as(name)]
    return store.relabel_manual(names, migration.apply, dry_run)


@dataclass
class _Item:
    article: dict[str, Any]  # `_id` and the text fields as read
    text_hash: str
    owned: dict[str, Any]  # our fields as stored before this run


class _Job:
    def __init__(self, store: Store, report: RunReport, lease: Lease, runs: RunLog,
                 model_dir: str | Path, refine: Refine, llm: LLMStats | None,
                 progress: Callable[[int], object], show: Callable[[str], None]) -> None:
        self.store, self.report, self.model_dir = store, report, model_dir
        self.lease, self.runs = lease, runs
        self.authorized = set(read_manifest(model_dir)["categories"])
        self.config = store.config
        self.refine, self.llm, self.progress, self.show = refine, llm, progress, show
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
                state = state if isinstance(state, dict) else {}
                text_hash = content_hash(article, self.config)
                verdict = report.selection.wants(state, text_hash,
                                                 owned.get(self.config.categories_field))
                problem = lock_problem(state)
                if problem:
                    report.fail(article["_id"], problem)
                elif verdict == "manual":
                    report.counts["skipped_manual"] += 1
                elif verdict == "unchanged":
                    resumed = state.get("run") in report.resumes
                    report.counts["resumed" if resumed else "unchanged"] += 1
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
        predictions = refine_batch(self.refine, [item.article for item in items], predictions,
                                   config)
        if self.llm is not None:
            report.llm = self.llm.as_dict()
        tagged_at = now()
        labels: list[tuple[_Item, Write]] = []
        failures: list[tuple[_Item, Write]] = []
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

    def _teacher(self, item: _Item, p: Prediction) -> Prediction:
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
            self.show(to_json(row))

    def _checkpoint(self, last_id: Any) -> None:
        """Everything up to `last_id` is done: record it, and keep the lease."""
        report = self.report
        report.checkpoint = last_id
        report.tick()
        if report.dry_run:
            return
        self.runs.save(report)
        self.lease.renew()
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
            self.lease.renew()
            self.renewed = time.monotonic()


def _ranked(scores: dict[str, float]) -> list[dict[str, Any]]:
    """Best first, as a list: category names may hold "." or "$", which keys may not."""
    return [{"category": name, "score": score}
            for name, score in sorted(scores.items(), key=lambda kv: -kv[1])]
