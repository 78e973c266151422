"""The nightly job and `tag-file` on Ray (`--engine ray`, the optional `hybrid[ray]` extra):
the same steps as on one machine, on the workers of a Ray cluster.

Partitions are `_id` ranges of whole batches (`Store.ranges`), at most `partition_size`
articles, shrinking towards the end (`_guided`); not `ray.data.read_mongo`. A range is a
plain query our scan already makes (every `_id` of a collection has one BSON type), so a
worker reads its range with `Store.scan`, as the local engine does: the same selection, the
same text as read for the write guard. A range is also a checkpoint that survives the
driver: the run report keeps the ranges it handed out (`RunReport.partitions`).
`read_mongo` would need pymongoarrow, turn documents into Arrow tables (mixed field types
and hostile records do not survive that), and hide which documents a failed read task held.

Workers are actors, one CPU each. Each loads the model once, verified by checksum as always
and checked to be the driver's (`Worker`), and keeps it. It scans its range, predicts, and
writes each batch itself with the store's guarded writes, through its own MongoDB
connection, in a thread while it predicts the next batch (the local engine's driver
likewise writes while its pool predicts). Writes happen in the workers, not the driver:
articles go only between MongoDB and the worker that tags them, and the driver sends ranges
and gets counts back, so it is never the bottleneck; MongoDB is. Writes also need no
coordination, because every write is conditional on the article's text being what was read
and on the article not being manual.

Faults. A worker that dies mid-partition is replaced, and its partition retried on a live
worker (up to `MAX_PARTITION_RETRIES` times; see `tag_partitions`), whether the process or
its whole host died. The retry skips what the first attempt wrote (same content hash;
counted "resumed"), so each article is written once per version of its text. Were an
article written twice (a worker cut off from the cluster still writing), the labels would
be the same: predictions do not depend on the process, the host or the batch. If the driver
dies, Ray ends its workers; the next run resumes from the partitions of its report.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hybrid.errors import HybridError, ModelError, UsageError

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ModuleNotFoundError as exc:
    raise UsageError("--engine ray needs Ray, on every host: pip install 'hybrid[ray]'"
                     ) from exc

from hybrid.batch.job import Job
from hybrid.batch.partition import Partition
from hybrid.batch.predictor import Record, predict_records
from hybrid.batch.processes import keeping_sigterm_handler, one_thread_per_process
from hybrid.config import Config
from hybrid.learn import artifacts
from hybrid.learn.prediction import Prediction
from hybrid.mongo.runs import RunReport
from hybrid.mongo.store import Store

if TYPE_CHECKING:
    from hybrid.learn.model import HybridModel

MAX_PARTITION_RETRIES = 3
PARTITIONS_PER_WORKER = 2  # a partition is 1 / (this x workers) of what is left (`_guided`)
log = logging.getLogger("hybrid.batch")


class Done(NamedTuple):
    """What a worker sends back for a partition."""
    report: RunReport  # its counts, categories and errors
    lines: list[str]  # --dry-run lines
    last: Any  # the last `_id` scanned
    complete: bool  # the scan reached the end of the range
    queued: int  # articles it selected for tagging


@ray.remote(num_cpus=1)
class Worker:
    """One Ray worker process. The model loads in `ready()` (or the first `predict`), so that
    a model this host cannot verify is a `ModelError` (exit 4) from a call, not an actor that
    never started.

    Each host reads the model directory at the same path, and verifies it as always. It
    must also be the driver's model: its manifest's digest must be `digest`, the digest of
    the manifest the driver verified (with its signature, under `HYBRID_MODEL_KEY`). The
    digest covers every file's checksum, so a host with an older copy is refused, and no
    host needs the key."""

    def __init__(self, model_dir: str, config: Config, digest: str) -> None:
        one_thread_per_process()
        self.model_dir, self.config, self.digest = model_dir, config, digest
        self._model: HybridModel | None = None

    def ready(self) -> None:
        if self._model is None:
            # here, not at the top: the driver imports this module too, and needs no
            # scikit-learn (2 s of every run's start-up)
            from hybrid.learn.model import HybridModel

            model = HybridModel.load(self.model_dir, config=self.config)
            if model.manifest["digest"] != self.digest:
                raise ModelError(f"{self.model_dir} on Ray host {socket.gethostname()} is not "
                                 "the model the run was started with: copy the same model "
                                 "directory to every host")
            self._model = model

    def predict(self, records: list[Record]) -> list[Prediction]:
        self.ready()
        return predict_records(self._model, records, self.config)

    def tag(self, report: RunReport, after: Any, until: Any, limit: int | None) -> Done:
        self.ready()
        lines: list[str] = []
        # a batch's writes overlap the next batch's prediction, as the local engine's do
        with Store(self.config) as store, ThreadPoolExecutor(1, "writes") as writes:
            part = Partition(store, report, self._model.manifest["categories"], after, until,
                             limit, show=lines.append)
            for items in part.batches():
                part.write(items, self.predict([item.article for item in items]), writes)
            part.flush()
        return Done(report, lines, part.last, part.complete, part.queued)


@contextlib.contextmanager
def connected(address: str | None, workers: int | None) -> Iterator[int]:
    """Ray, and how many workers to start: `workers`, or one per CPU of the cluster. Without
    an address, a Ray instance of its own on this machine for as long as the block lasts
    ("local": not whatever cluster `ray start` last ran here, which `ray.init()` would join,
    dead or alive). A process already connected (a test, a notebook) stays connected."""
    started = not ray.is_initialized()
    if started:
        with keeping_sigterm_handler():  # SIGTERM stops the run cleanly (`nightly.run`)
            ray.init(address=address or "local", num_cpus=None if address else workers,
                     include_dashboard=False, logging_level=logging.WARNING)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if workers and workers > cpus:
            raise UsageError(f"--workers {workers}: the Ray cluster has {cpus} CPUs")
        yield workers or cpus
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _cluster(model_dir: str | Path, config: Config, workers: int | None
             ) -> Iterator[tuple[int, Callable[..., Any]]]:
    """How many workers to start, and a function that starts one (with Ray actor options);
    every worker it started is ended with the block."""
    # checked here first, so a corrupt model exits 4 before any worker starts
    digest = artifacts.verify(model_dir, key=config.model_key)["digest"]
    started: list[Any] = []

    def start(**options: Any) -> Any:
        started.append(Worker.options(**options).remote(str(model_dir), config, digest))
        return started[-1]

    with connected(config.ray_address, workers) as n:
        try:
            yield n, start
        finally:
            for actor in started:
                ray.kill(actor)


def _result(ref: Any) -> Any:
    """A task's result; its own exception (a `StoreError`, a `ModelError`) as raised."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        raise exc.cause from None


def tag_partitions(job: Job, workers: int | None) -> None:
    """The nightly job's Ray engine: partitions out to the workers, a checkpoint as each one
    comes back.

    The driver, not Ray, retries the partition of a worker that died: it goes back in the
    queue for any live worker, and a new worker is started in the dead one's place, which
    takes work once Ray could place it and it loaded the model. Ray's own restart would
    retry the partition on the restarted worker only, which needs a free CPU: when a host
    dies and the workers hold every other CPU, it would wait forever. A partition whose
    worker died `MAX_PARTITION_RETRIES` + 1 times stays not done, and the run fails once
    the others are done: rerun it to retry."""
    report, config = job.report, job.config
    with _cluster(job.model_dir, config, workers) as (n, start):
        report.workers = n
        size = max(1, config.partition_size // config.batch_size) * config.batch_size
        frontier = report.partitions[-1]["until"] if report.partitions else report.checkpoint
        fresh = _guided(job.store.ranges(frontier, config.batch_size)
                        if not report.partitions or frontier is not None else [],
                        n, size // config.batch_size)
        queue = deque(p for p in report.partitions if not p["done"])
        budget = report.selection.limit  # articles not yet promised to a partition
        # a task in flight → (its partition, or None for `ready`; its worker; its limit)
        running: dict[Any, tuple[dict[str, Any] | None, Any, int | None]] = {}
        idle: list[Any] = []
        deaths: Counter[int] = Counter()
        lost: list[dict[str, Any]] = []

        def launch() -> None:
            actor = start()
            running[actor.ready.remote()] = (None, actor, None)

        for _ in range(n):
            launch()
        while True:
            while idle and (budget is None or budget > 0):
                if not queue and (bounds := next(fresh, None)) is not None:
                    queue.append(report.hand_out(*bounds))
                if not queue:
                    break
                partition, actor = queue.popleft(), idle.pop()
                take = None if budget is None else min(budget, size)
                budget = None if budget is None else budget - take
                ref = actor.tag.remote(report.part(), partition["after"], partition["until"],
                                       take)
                running[ref] = (partition, actor, take)
            if not any(p for p, _, _ in running.values()) and (budget == 0 or idle):
                break  # nothing more to hand out, nothing in flight but starting workers
            if not running:
                raise HybridError("every Ray worker died while loading the model; see the "
                                  "workers' logs (is a host out of memory?)")
            ready, _ = ray.wait(list(running), timeout=config.lease_seconds / 4)
            if not ready:  # a long partition: keep the lease
                job.save()
                continue
            partition, actor, take = running.pop(ready[0])
            try:
                done: Done | None = _result(ready[0])
            except RayActorError as exc:
                if partition is None:  # died starting: not replaced, the others go on
                    continue
                log.warning("event=worker_died run=%s after=%s until=%s error=%r", report.id,
                            partition["after"], partition["until"], str(exc)[:300])
                launch()
                budget = None if budget is None else budget + take
                deaths[id(partition)] += 1
                if deaths[id(partition)] > MAX_PARTITION_RETRIES:
                    lost.append(partition)
                else:
                    queue.appendleft(partition)
                continue
            idle.append(actor)
            if done is None:  # a worker is ready
                continue
            if budget is not None:
                budget += take - done.queued
            report.add(done.report)
            report.finish(partition, done.last, done.complete)
            for line in done.lines:
                job.show(line)
            job.progress(done.report.counts["seen"])
            job.save()
    if lost:
        ranges = ", ".join(f"({p['after']!r}, {p['until']!r}]" for p in lost[:5])
        raise HybridError(f"{len(lost)} partition(s) killed their worker "
                          f"{MAX_PARTITION_RETRIES + 1} times: _id {ranges}; the rest is done "
                          "and checkpointed. Run again to retry them; `hybrid run` without "
                          "--engine ray isolates an article that kills its worker")


def _guided(batches: list[tuple[Any, Any]], workers: int, most: int
            ) -> Iterator[tuple[Any, Any]]:
    """Consecutive batch-sized `_id` ranges joined into partitions, each a share of what is
    left (1 / (2 x workers) of it; at most `most` batches): guided self-scheduling. Large
    partitions first, then smaller and smaller, down to one batch at the end, so that no
    worker waits long for the others at the end and few partitions are handed out."""
    i = 0
    while i < len(batches):
        n = min(most, max(1, math.ceil((len(batches) - i) / (PARTITIONS_PER_WORKER * workers))))
        yield batches[i][0], batches[i + n - 1][1]
        i += n


class RayPredictor:
    """`Predictor.map` on Ray workers (`tag-file --engine ray`): record batches in,
    predictions out, in order, at most 2 batches per worker waiting. The file is read and
    written by this process."""

    def __init__(self, model_dir: str | Path, config: Config, workers: int | None) -> None:
        self.config = config
        self._stack = contextlib.ExitStack()
        n, start = self._stack.enter_context(_cluster(model_dir, config, workers))
        # here Ray restarts a dead worker and retries its batch (which needs a free CPU)
        self.actors = [start(max_restarts=-1, max_task_retries=MAX_PARTITION_RETRIES)
                       for _ in range(n)]

    def map(self, record_batches: Iterable[list[Record]]
            ) -> Iterator[tuple[list[Record], list[Prediction]]]:
        pending: deque[tuple[list[Record], Any]] = deque()
        for i, batch in enumerate(record_batches):
            pending.append((batch, self.actors[i % len(self.actors)].predict.remote(batch)))
            if len(pending) >= 2 * len(self.actors):
                yield self._next(pending)
        while pending:
            yield self._next(pending)

    def _next(self, pending: deque[tuple[list[Record], Any]]
              ) -> tuple[list[Record], list[Prediction]]:
        batch, ref = pending.popleft()
        try:
            return batch, _result(ref)
        except RayActorError as exc:
            raise HybridError(f"a Ray worker died {MAX_PARTITION_RETRIES + 1} times on one "
                              f"batch; stopping ({str(exc)[:300]})") from exc

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> RayPredictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
