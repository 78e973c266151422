"""The workers that serve: who is free, a replacement for one that dies, and the rolling
change to a new generation.

A reload goes one worker at a time. With two workers or more, an old one retires, and its
replacement starts loading only once the old process has answered the batch it had in hand
and exited, while the others serve: memory never holds more workers than `--workers`, and
the queue absorbs the dip in capacity. A single worker is replaced only once its successor
has loaded and tagged the probe article. Either way no request waits for a model to load,
and none fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from hybrid.config import Config
from hybrid.errors import ModelError
from hybrid.serve.generation import Generation
from hybrid.serve.metrics import Metrics
from hybrid.serve.workers import Worker

log = logging.getLogger("hybrid.serve")
_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between tries to replace a dead worker


class Pool:
    def __init__(self, config: Config, size: int, metrics: Metrics) -> None:
        self.config = config
        self.size = size
        self.metrics = metrics
        self.generation: Generation | None = None
        self.target: Generation | None = None  # the generation a new worker loads
        self.serving: list[Worker] = []
        # the worker freed last is taken first: at low load one worker serves every request,
        # and its in-memory caches (tag candidates' embeddings) stay warm instead of two
        # half-warm ones taking turns; the others take work only while it is busy
        self._idle: asyncio.LifoQueue[Worker] = asyncio.LifoQueue()
        self._replacing = 0
        self._tasks: set[asyncio.Task] = set()
        self.closed = False

    @property
    def busy(self) -> int:
        """Workers of the generation that serves with a batch in hand."""
        return sum(w.busy and not w.retired for w in self.serving)

    @property
    def ready(self) -> bool:
        return not self.closed and any(not w.retired for w in self.serving)

    async def start(self, generation: Generation, workers: list[Worker]) -> None:
        """Serve with `workers` (from `launch`) once all are loaded; `ModelError` if one
        fails."""
        self.generation = self.target = generation
        results = await asyncio.gather(*(w.start() for w in workers), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            for w in workers:
                w.stop()
            raise failed[0] if isinstance(failed[0], ModelError) else ModelError(str(failed[0]))
        for w in workers:
            self._serve(w)

    def _serve(self, worker: Worker) -> None:
        self.serving.append(worker)
        self._idle.put_nowait(worker)
        self.metrics.workers.set(sum(not w.retired for w in self.serving))

    async def take(self) -> Worker:
        """The free worker of the generation that serves that was freed last, waiting for
        one if all are busy."""
        while True:
            worker = await self._idle.get()
            if not worker.retired:
                worker.busy = True
                return worker

    def give_back(self, worker: Worker) -> None:
        worker.busy = False
        if worker.retired:
            worker.stop()
        else:
            self._idle.put_nowait(worker)

    def _retire(self, worker: Worker) -> None:
        worker.retired = True
        if worker in self.serving:
            self.serving.remove(worker)
        if not worker.busy:
            worker.stop()
        self.metrics.workers.set(sum(not w.retired for w in self.serving))

    def lost(self, worker: Worker) -> None:
        """`worker`'s process died (a crash, the OOM killer): another takes its place."""
        log.warning("event=worker_died pid=%s generation=%d", worker.pid,
                    worker.generation.number)
        worker.busy = False
        self._retire(worker)
        self._top_up()

    async def roll(self, generation: Generation) -> None:
        """Serve `generation`, one worker at a time. With two workers or more an old one
        retires before its replacement loads (the others serve meanwhile: memory never holds
        more workers than `size`); a single worker is replaced only once the new one serves.
        `ModelError` if the first new worker does not load or predict: the old generation
        then serves on, at full strength again once a replacement has loaded."""
        self.target = generation  # what a worker replacing a dead one loads from now on
        old = list(self.serving)
        try:
            for worker in old:
                if worker.retired:  # it died meanwhile: `lost` has a replacement loading
                    continue
                new = await self._successor(worker, generation, len(old) == 1)
                if new is None:
                    continue
                if self.closed:  # shut down while it loaded: it must not serve
                    new.stop()
                    return
                self.generation = generation
                self._serve(new)
                if len(old) == 1:
                    self._retire(worker)
            self._retire_stale()
        except ModelError:
            self._retire_stale()
            raise
        finally:
            if not self.closed:
                self._top_up()

    async def _successor(self, worker: Worker, generation: Generation,
                         alone: bool) -> Worker | None:
        """`worker`'s replacement, loaded (None if it failed, `_top_up` retries); the first
        refused raises `ModelError` and the old generation serves on. A worker dying
        meanwhile is not replaced twice: this one counts in `_replacing`."""
        self._replacing += 1
        try:
            if not alone:
                self._retire(worker)
                await self._gone(worker)
                if self.closed:
                    return None
            new = Worker(generation, self.config)
            try:
                await new.start()
            except ModelError as exc:
                if self.generation is not generation:  # the first: the model is refused
                    self.target = self.generation
                    raise
                log.error("event=worker_start_failed error=%s", exc)
                return None
            except BaseException:  # the reload was cancelled: the loading process goes too
                new.stop()
                raise
            return new
        finally:
            self._replacing -= 1

    def _retire_stale(self) -> None:
        """A worker of another generation than the target (one a dead worker's replacement
        loaded before the roll began) must not answer once a reload has said "reloaded"."""
        for worker in [w for w in self.serving if w.generation is not self.target]:
            log.warning("event=stale_worker_retired pid=%s generation=%d", worker.pid,
                        worker.generation.number)
            self._retire(worker)

    async def _gone(self, worker: Worker) -> None:
        """Wait for a retired worker's process to exit: a batch in hand is answered first.
        One stuck past `serve_timeout` (its requests have had their 503) is left to exit
        on its own, and the reload goes on."""
        if not await worker.exited(self.config.serve_timeout):
            log.warning("event=retired_worker_still_running pid=%s seconds=%g", worker.pid,
                        self.config.serve_timeout)

    def _top_up(self) -> None:
        missing = self.size - len(self.serving) - self._replacing
        for _ in range(max(0, missing)):
            self._replacing += 1
            task = asyncio.create_task(self._replace())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _replace(self) -> None:
        try:
            for delay in (0.0, *_BACKOFF):
                await asyncio.sleep(delay)
                if self.closed:
                    return
                generation = self.target
                worker = Worker(generation, self.config)
                try:
                    await worker.start()
                except ModelError as exc:
                    log.error("event=worker_start_failed error=%s", exc)
                    continue
                except BaseException:
                    worker.stop()
                    raise
                if self.closed:
                    worker.stop()
                    return
                if generation is not self.target:  # a reload began or was refused meanwhile
                    worker.stop()
                    continue
                self._serve(worker)
                return
            log.error("event=worker_not_replaced: serving with %d of %d workers",
                      len(self.serving), self.size)
        finally:
            self._replacing -= 1

    async def close(self) -> None:
        """Stop every worker (after the requests have drained) and wait for them to exit;
        one still running after `serve_timeout` is killed."""
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        workers = list(self.serving)
        self.serving.clear()
        for worker in workers:
            worker.retired = True
        for worker in workers:
            worker.stop()
        timeout = self.config.serve_timeout
        exited = await asyncio.gather(*(w.exited(timeout) for w in workers))
        for worker, gone in zip(workers, exited, strict=True):
            if not gone and worker.pid is not None:  # hung: it must not hold up SIGTERM
                log.warning("event=worker_killed pid=%s seconds=%g", worker.pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
