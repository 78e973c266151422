"""The nightly job on this machine (`--engine local`, the default): one partition from the
checkpoint on, predicted in a process pool (`--workers`), a checkpoint per batch written.

The driver scans and writes while the pool predicts the next batches; a batch is written
and checkpointed in scan order, so the checkpoint never passes an article not yet written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from hybrid.batch.job import Job
from hybrid.batch.partition import Item, Partition
from hybrid.batch.predictor import Predictor


def tag_partitions(job: Job) -> None:
    """Tag the job's selection from its checkpoint on with `report.workers` processes."""
    report = job.report
    report.partitions = []
    in_flight: deque[list[Item]] = deque()  # batches handed to the predictor

    def heartbeat(last_id: Any, empty: bool) -> None:
        job.heartbeat(last_id, idle=empty and not in_flight)

    def records() -> Iterator[list[dict[str, Any]]]:
        for batch in part.batches():
            in_flight.append(batch)
            yield [item.article for item in batch]

    part = Partition(job.store, report, job.authorized, after=report.checkpoint,
                     limit=report.selection.limit, refine=job.refine, show=job.show,
                     progress=job.progress, heartbeat=heartbeat)
    with Predictor(job.model_dir, job.config, report.workers) as predictor:
        for _, predictions in predictor.map(records()):
            items = in_flight.popleft()
            part.write(items, predictions)
            if job.llm is not None:
                report.llm = job.llm.as_dict()
            job.checkpoint(items[-1].article["_id"])
