"""The nightly job over a MongoDB collection: select → predict → refine → write → report.

It scans the collection in `_id` order. Manual articles are skipped; unchanged ones (same
content hash as when tagged) are counted and skipped; the rest are predicted in batches, and
each batch is written with guarded bulk updates (`hybrid.batch.partition`), after which the
run report in `hybrid_runs` records the checkpoint. A run that dies leaves its report
unfinished; the next run with the same selection starts after its checkpoint, so nothing is
lost and nothing is tagged twice for the same text.

Two engines run the same steps on a `Job` (`hybrid.batch.job`): "local"
(`hybrid.batch.local_engine`) scans in this process and predicts in a process pool
(`--workers`); "ray" (`hybrid.batch.ray_engine`) hands `_id` ranges to Ray workers that scan,
predict and write them, with a checkpoint per range. The lease, the resume and the report are
this module's, whatever the engine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hybrid.batch import local_engine
from hybrid.batch.job import Job
from hybrid.batch.predictor import Refine, keep_model_answers, open_llm_step
from hybrid.batch.processes import Terminated, sigterm_interrupts
from hybrid.errors import Exit, Interrupted, UsageError
from hybrid.learn.artifacts import read_manifest
from hybrid.llm.stats import LLMStats
from hybrid.mongo.lease import Lease
from hybrid.mongo.runs import RunLog, RunReport, Selection
from hybrid.mongo.store import Store, now
from hybrid.taxonomy.change import Migration

log = logging.getLogger("hybrid.batch")
ENGINES = ("local", "ray")


def run(store: Store, model_dir: str | Path, selection: Selection, *,
        workers: int | None = 1, engine: str = "local", dry_run: bool = False,
        refine: Refine | None = None, progress: Callable[[int], object] = lambda n: None,
        show: Callable[[str], None] = print) -> RunReport:
    """Tag the selected articles of `store`'s collection; raises `LeaseHeld` if another run is
    on it, `StoreError` if MongoDB stays unreachable (the checkpoint is kept either way).

    `refine` sees each batch's (article, prediction) pairs after the model and returns the
    predictions to write; by default the LLM step the configuration asks for revises the
    low-confidence ones (a prediction it replaced has `source` "llm"). `--dry-run` takes no
    lease and writes nothing; `show` gets one JSON line per article whose labels would change.
    `engine` "ray" runs `workers` Ray workers (None: one per CPU of the cluster at the
    `ray_address` setting); `refine` and the LLM step are the local engine's only.

    SIGTERM (in the main thread) stops it as SIGINT does: the batch in hand is dropped, the
    run is marked interrupted with its checkpoint kept, the lease is released, and
    `Interrupted` is raised (exit 143; 130 for SIGINT), so the next run, from any host,
    resumes at once.
    """
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray" and (refine is not None or store.config.llm_mode != "off"):
        raise UsageError("the LLM step runs with --engine local only: run the Ray job with "
                         "--llm-mode off, then a local run for the LLM pass")
    if refine is not None:
        with sigterm_interrupts():
            return _run(store, model_dir, selection, workers, engine, dry_run, refine, None,
                        progress, show)
    with sigterm_interrupts(), open_llm_step(store.config, model_dir) as refiner:
        if refiner is None:
            return _run(store, model_dir, selection, workers, engine, dry_run,
                        keep_model_answers, None, progress, show)
        return _run(store, model_dir, selection, workers, engine, dry_run,
                    refiner.refine_pairs, refiner.stats, progress, show)


def _run(store: Store, model_dir: str | Path, selection: Selection, workers: int | None,
         engine: str, dry_run: bool, refine: Refine, llm: LLMStats | None,
         progress: Callable[[int], object], show: Callable[[str], None]) -> RunReport:
    config = store.config
    manifest = read_manifest(model_dir)
    report = RunReport(collection=config.mongo_collection,
                       target=config.results_collection or config.mongo_collection,
                       model=Path(model_dir).name,
                       taxonomy_fingerprint=manifest["taxonomy_fingerprint"],
                       selection=selection, workers=workers or 1, dry_run=dry_run,
                       engine=engine, zero_shot=bool(manifest.get("zero_shot")))
    lease, runs = Lease(store, report.id), RunLog(store)
    job = Job(store, report, lease, runs, model_dir, refine, llm, progress, show)
    if dry_run:
        report.relabelled_manual = _relabel_manual(store, manifest, selection, dry_run)
        _tag(job, workers)
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
            report.partitions = previous.get("partitions") or []
            report.selection = replace(selection,
                                       retag_before=previous["selection"]["retag_before"])
            log.info("event=resume run=%s from_run=%s checkpoint=%s", report.id,
                     previous["_id"], report.checkpoint)
        runs.save(report)
        log.info("event=run_started run=%s collection=%s target=%s mode=%s model=%s "
                 "engine=%s", report.id, report.collection, report.target, selection.mode,
                 report.model, engine)
        report.relabelled_manual = _relabel_manual(store, manifest, selection, dry_run)
        _tag(job, workers)
        report.status = "completed"
        report.finished_at = now()
        report.tick()
        runs.save(report)
        lease.release()
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        report.status = "interrupted" if interrupted else "failed"
        report.finished_at = now()
        report.tick()
        with contextlib.suppress(Exception):  # best effort: the server may be the problem
            runs.save(report, best_effort=True)
        with contextlib.suppress(Exception):
            lease.release(best_effort=True)
        if interrupted:
            terminated = isinstance(exc, Terminated)
            raise Interrupted(
                f"stopped by {'SIGTERM' if terminated else 'SIGINT'}: run {report.id} marked "
                f"interrupted after tagging {report.counts['tagged']} articles; its checkpoint "
                "is kept and its lease released: run again to continue",
                Exit.TERMINATED if terminated else Exit.INTERRUPTED) from None
        raise
    log.info("event=run_finished run=%s %s", report.id,
             " ".join(f"{k}={v}" for k, v in report.counts.items()))
    return report


def _tag(job: Job, workers: int | None) -> None:
    if job.report.engine == "ray":
        from hybrid.batch.ray_engine import tag_partitions  # Ray is an optional extra

        tag_partitions(job, workers)
    else:
        local_engine.tag_partitions(job)


def _relabel_manual(store: Store, manifest: dict[str, Any], selection: Selection,
                    dry_run: bool) -> int:
    """`--retag affected` after `hybrid retrain`: manual labels under names the new list
    renamed or merged move with them (a rename keeps the reviewer's decision)."""
    migration = Migration.from_manifest(manifest)
    if selection.mode != "affected" or migration is None:
        return 0
    names = [stored for name in migration.changed for stored in migration.stored_as(name)]
    return store.relabel_manual(names, migration.apply, dry_run)
