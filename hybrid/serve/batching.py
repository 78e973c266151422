"""Articles of concurrent requests, predicted together.

Every article waits in one queue. Whenever a worker is free it takes what is waiting, up
to `serve_model_batch` articles. While other workers are busy and articles queue up
(requests are coming fast) it first waits `serve_batch_window` seconds for more to join.
An idle server adds nothing to a request, and neither does a steady trickle: at 20
requests/s, a lone article that came while the other worker was busy would wait the window
for a next one ~50 ms away. A busy server fills whole batches while every worker is busy,
so it is as efficient per article as `tag-file` (a batch of one costs ~1.5x an article of
a batch of 32: the classifier's and tag ranker's cost per call).
Past `serve_max_queue` waiting articles a request is refused at once (503 with
Retry-After) rather than queued into a timeout.

A batch whose worker dies is retried one article at a time (on the worker that replaces
it), so only an article that kills its worker again gets an error, as in `tag-file`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from hybrid.config import Config
from hybrid.ingest.article import article_id_of
from hybrid.learn.prediction import Prediction
from hybrid.serve.generation import Generation
from hybrid.serve.metrics import Metrics
from hybrid.serve.pool import Pool
from hybrid.serve.problems import Problem
from hybrid.serve.workers import Worker

log = logging.getLogger("hybrid.serve")
Answer = tuple[Prediction, Generation]


@dataclass
class Job:
    record: Any
    explain: bool
    future: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())
    alone: bool = False  # its batch killed a worker: it goes on its own


class Batcher:
    def __init__(self, pool: Pool, config: Config, metrics: Metrics) -> None:
        self.pool = pool
        self.config = config
        self.metrics = metrics
        self._jobs: deque[Job] = deque()
        self._arrived = asyncio.Event()
        self._running: set[asyncio.Task] = set()

    def submit(self, records: list[Any], explain: bool) -> list[asyncio.Future[Answer]]:
        self._drop_abandoned()
        if len(self._jobs) + len(records) > self.config.serve_max_queue:
            raise Problem(503, f"the server is busy: {len(self._jobs)} articles are waiting "
                               f"(serve_max_queue {self.config.serve_max_queue}); try again",
                          headers={"Retry-After": "1"})
        jobs = [Job(record, explain) for record in records]
        self._jobs.extend(jobs)
        self._arrived.set()
        self.metrics.queued.set(len(self._jobs))
        return [job.future for job in jobs]

    def _drop_abandoned(self) -> None:
        """Articles whose request gave up (its deadline passed) are not predicted."""
        if any(job.future.done() for job in self._jobs):
            self._jobs = deque(job for job in self._jobs if not job.future.done())

    async def run(self) -> None:
        """Hand batches to free workers, for as long as the service runs."""
        while True:
            await self._wait_for_jobs()
            worker = await self.pool.take()
            cap = self.config.serve_model_batch
            if 1 < len(self._jobs) < cap and self.pool.busy > 1:  # others busy: requests come
                await asyncio.sleep(self.config.serve_batch_window)
            self._drop_abandoned()
            batch = self._take(cap)
            self.metrics.queued.set(len(self._jobs))
            if not batch:
                self.pool.give_back(worker)
                continue
            task = asyncio.create_task(self._predict(worker, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _wait_for_jobs(self) -> None:
        while True:
            self._drop_abandoned()
            if self._jobs:
                return
            self._arrived.clear()
            await self._arrived.wait()

    def _take(self, cap: int) -> list[Job]:
        """The first waiting article, and those after it that can share its batch."""
        if not self._jobs:
            return []
        first = self._jobs.popleft()
        if first.alone:
            return [first]
        batch, left = [first], deque()
        while self._jobs and len(batch) < cap:
            job = self._jobs.popleft()
            (batch if job.explain == first.explain and not job.alone else left).append(job)
        self._jobs = left + self._jobs
        return batch

    async def _predict(self, worker: Worker, batch: list[Job]) -> None:
        try:
            predictions = await worker.predict([job.record for job in batch], batch[0].explain)
        except BrokenProcessPool:
            self.pool.lost(worker)
            self._retry_alone(batch)
            return
        except Exception as exc:  # a batch that cannot even reach the worker (pickling)
            self.pool.give_back(worker)
            log.exception("batch of %d articles failed", len(batch))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        except BaseException:  # cancelled: the worker must not stay busy
            self.pool.give_back(worker)
            raise
        self.pool.give_back(worker)
        self.metrics.batch.observe(len(batch))
        for job, prediction in zip(batch, predictions, strict=True):
            self.metrics.articles.labels("error" if prediction.error else "ok").inc()
            if not job.future.done():
                job.future.set_result((prediction, worker.generation))

    def _retry_alone(self, batch: list[Job]) -> None:
        if len(batch) == 1 and batch[0].alone:
            job = batch[0]
            article_id = article_id_of(job.record, self.config.id_field)
            if not job.future.done():
                job.future.set_result((Prediction(article_id, error=(
                    f"article {article_id!r}: the worker process died while tagging it")),
                    self.pool.generation))
            return
        for job in reversed(batch):
            job.alone = True
            self._jobs.appendleft(job)
        self._arrived.set()

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        for job in self._jobs:
            if not job.future.done():
                job.future.cancel()
        self._jobs.clear()
