"""One nightly run as its engines see it (`hybrid.batch.local_engine`,
`hybrid.batch.ray_engine`): the store, the report, and how a checkpoint is recorded.

The run itself (lease, resume, report) is `hybrid.batch.nightly`'s; it makes a `Job` and
hands it to the engine asked for. The engines import this module and never each other or
`nightly`, so there is no circle between them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybrid.batch.predictor import Refine
from hybrid.learn.artifacts import read_manifest
from hybrid.llm.stats import LLMStats
from hybrid.mongo.lease import Lease
from hybrid.mongo.runs import RunLog, RunReport
from hybrid.mongo.store import Store

log = logging.getLogger("hybrid.batch")


class Job:
    """One run as the engines see it: the store, the report, and `save()`, which records the
    report and keeps the lease (nothing with --dry-run)."""

    def __init__(self, store: Store, report: RunReport, lease: Lease, runs: RunLog,
                 model_dir: str | Path, refine: Refine, llm: LLMStats | None,
                 progress: Callable[[int], object], show: Callable[[str], None]) -> None:
        self.store, self.report, self.model_dir = store, report, model_dir
        self.lease, self.runs = lease, runs
        self.authorized = read_manifest(model_dir)["categories"]
        self.config = store.config
        self.refine, self.llm, self.progress, self.show = refine, llm, progress, show
        self.renewed = time.monotonic()

    def save(self) -> None:
        report = self.report
        report.tick()
        if report.dry_run:
            return
        self.runs.save(report)
        self.lease.renew()
        self.renewed = time.monotonic()
        log.info("event=checkpoint run=%s checkpoint=%s %s", report.id, report.checkpoint,
                 " ".join(f"{k}={v}" for k, v in report.counts.items()))

    def checkpoint(self, last_id: Any) -> None:
        """Everything up to `last_id` is done: record it, and keep the lease."""
        self.report.checkpoint = last_id
        self.save()

    def heartbeat(self, last_id: Any, idle: bool) -> None:
        """In long stretches with nothing to tag, keep the lease; when the engine is `idle`
        (nothing scanned waits in a batch or in flight), also move the checkpoint on, so a
        resumed run does not rescan them."""
        if self.report.dry_run or time.monotonic() - self.renewed < self.config.lease_seconds / 4:
            return
        if idle:
            self.checkpoint(last_id)
        else:
            self.lease.renew()
            self.renewed = time.monotonic()
