"""Which worker of `hybrid serve` takes a request, and when (the front process's pool and
batcher, with stand-in workers: the choice is the front's, whatever the workers compute)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from types import SimpleNamespace

import fastapi.dependencies.utils
import httpx
import pytest

from hybrid.config import Config
from hybrid.learn.prediction import Prediction
from hybrid.serve import pool as pool_module
from hybrid.serve.app import create_app
from hybrid.serve.batching import Batcher
from hybrid.serve.feedback import on_a_worker
from hybrid.serve.metrics import Metrics
from hybrid.serve.pool import Pool


class StandIn:
    """What the pool sees of a worker: it loads, is busy or retired, and stops."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.busy = False
        self.retired = False
        self.generation = None
        self.pid = None
        self.batches: list[list[str]] = []
        self.gone = asyncio.Event()

    async def predict(self, records: list[dict], explain: bool) -> list[Prediction]:
        self.batches.append([r["id"] for r in records])
        return [Prediction(r["id"]) for r in records]

    async def start(self) -> None:
        pass

    def stop(self) -> None:
        self.gone.set()

    async def call(self, fn, *args):
        return await fn(*args)

    async def exited(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.gone.wait()
        except TimeoutError:
            return False
        return True


def test_lone_requests_go_to_the_worker_freed_last_so_its_caches_stay_warm():
    async def run() -> None:
        workers = [StandIn("a"), StandIn("b"), StandIn("c")]
        pool = Pool(Config(), len(workers), Metrics())
        await pool.start(None, workers)  # type: ignore[arg-type]
        first = await pool.take()
        pool.give_back(first)
        for _ in range(5):  # one request at a time: the same worker each time
            worker = await pool.take()
            assert worker is first
            pool.give_back(worker)
        # while it is busy another one serves, and the one freed last is taken next
        busy = await pool.take()
        other = await pool.take()
        assert busy is first and other is not first
        pool.give_back(other)
        pool.give_back(busy)
        assert await pool.take() is busy
        assert await pool.take() is other

    asyncio.run(asyncio.wait_for(run(), 10))


def test_a_reload_loads_a_new_worker_only_once_the_one_it_replaces_has_exited(monkeypatch):
    """A retired worker with a batch in hand lives until that batch is answered. Its
    replacement used to start loading at once: three model processes in memory with
    `--workers 2` (a reload peaked at 1,699 MB, over the 1.5 GB limit)."""
    everyone: list[StandIn] = []
    alive_at_start: list[int] = []

    def new_worker(generation: object, config: Config) -> StandIn:
        worker = StandIn(f"new{len(everyone)}")
        worker.generation = generation
        everyone.append(worker)
        alive_at_start.append(sum(not w.gone.is_set() for w in everyone))
        return worker

    async def run() -> None:
        monkeypatch.setattr(pool_module, "Worker", new_worker)
        old = [StandIn("a"), StandIn("b")]
        everyone.extend(old)
        pool = Pool(Config(), len(old), Metrics())
        await pool.start(None, old)  # type: ignore[arg-type]
        other, busy = await pool.take(), await pool.take()
        pool.give_back(other)
        assert busy is old[0]  # the worker retired first has a batch in hand
        rolling = asyncio.create_task(pool.roll("generation 2"))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert alive_at_start == []  # nothing loads while the busy one still runs
        pool.give_back(busy)  # its batch is answered: it exits, and its replacement loads
        await asyncio.wait_for(rolling, 5)
        assert alive_at_start == [2, 2]
        assert [w.name for w in pool.serving] == ["new2", "new3"]
        assert all(w.gone.is_set() for w in old)

    asyncio.run(asyncio.wait_for(run(), 10))


def test_a_lone_article_is_not_held_for_the_batch_window_while_another_worker_is_busy():
    """At a steady 20 requests/s the next article is ~50 ms away: waiting for it only adds
    the window to the article's latency. Once articles queue up, the window still gathers
    them into one batch."""
    async def run() -> None:
        config = Config(serve_batch_window=1.0)
        workers = [StandIn("a"), StandIn("b")]
        pool = Pool(config, len(workers), Metrics())
        await pool.start(None, workers)  # type: ignore[arg-type]
        busy = await pool.take()  # the other worker has a batch in hand
        free = next(w for w in workers if w is not busy)
        batcher = Batcher(pool, config, pool.metrics)
        running = asyncio.create_task(batcher.run())
        started = time.monotonic()
        await asyncio.gather(*batcher.submit([{"id": "lone"}], False))
        assert time.monotonic() - started < 0.5
        # two waiting while the other worker is busy: the window gathers a third
        queued = batcher.submit([{"id": "x"}, {"id": "y"}], False)
        await asyncio.sleep(0.1)
        queued += batcher.submit([{"id": "z"}], False)
        await asyncio.gather(*queued)
        assert free.batches == [["lone"], ["x", "y", "z"]]
        running.cancel()
        await batcher.close()

    asyncio.run(asyncio.wait_for(run(), 10))


def test_the_api_key_is_checked_on_the_event_loop_without_a_hop_to_a_thread(monkeypatch):
    """A plain `def` dependency runs in a worker thread: two thread hand-offs on every
    request, which a loaded machine makes cost milliseconds."""
    hops = []

    async def run_in_threadpool(fn, *args, **kwargs):
        hops.append(fn.__name__)
        return fn(*args, **kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", run_in_threadpool)
    config = Config(serve_suggest_access="key")
    app = create_app(SimpleNamespace(config=config, metrics=Metrics(), api_key="k" * 20))

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [(await client.post(path, json={}, headers={
                "Authorization": "Bearer wrong"})).status_code
                for path in ("/v1/suggest", "/v1/feedback", "/v1/admin/reload")]

    assert asyncio.run(run()) == [401, 401, 401]
    assert hops == []


def _factory(monkeypatch, kind: type[StandIn] = StandIn) -> list[StandIn]:
    """Make the pool start stand-ins of `kind`; the list holds each one, oldest first."""
    started: list[StandIn] = []

    def new_worker(generation: object, config: Config) -> StandIn:
        worker = kind(f"new{len(started)}")
        worker.generation = generation
        started.append(worker)
        return worker

    monkeypatch.setattr(pool_module, "Worker", new_worker)
    return started


def test_a_worker_dying_while_a_reload_waits_is_replaced_from_the_new_generation(monkeypatch):
    """Its replacement used to load the old generation, and be counted without the reload's
    own: two old-model workers served on after "reloaded"."""
    async def run() -> None:
        started = _factory(monkeypatch)
        one, two = SimpleNamespace(number=1), SimpleNamespace(number=2)
        old = [StandIn("a"), StandIn("b")]
        for worker in old:
            worker.generation = one
        pool = Pool(Config(), len(old), Metrics())
        await pool.start(one, old)  # type: ignore[arg-type]
        other, busy = await pool.take(), await pool.take()
        pool.give_back(other)
        rolling = asyncio.create_task(pool.roll(two))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)  # the reload waits for the busy worker to exit
        pool.lost(other)  # meanwhile the other one dies
        await asyncio.sleep(0.1)
        pool.give_back(busy)
        await asyncio.wait_for(rolling, 5)
        await asyncio.sleep(0.1)  # a replacement started meanwhile has loaded
        assert [w.generation.number for w in pool.serving] == [2, 2]
        assert len(started) == 2

    asyncio.run(asyncio.wait_for(run(), 10))


class Loading(StandIn):
    """A worker that loads until told."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.loaded = asyncio.Event()

    async def start(self) -> None:
        await self.loaded.wait()


def test_a_cancelled_reload_stops_the_worker_it_was_loading(monkeypatch):
    async def run() -> None:
        started = _factory(monkeypatch, Loading)
        pool = Pool(Config(), 1, Metrics())
        await pool.start(None, [StandIn("a")])  # type: ignore[arg-type]
        rolling = asyncio.create_task(pool.roll("generation 2"))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        rolling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rolling
        assert started[0].gone.is_set()
        assert [w.name for w in pool.serving] == ["a"]
        await pool.close()

    asyncio.run(asyncio.wait_for(run(), 10))


def test_a_reload_does_not_serve_its_new_worker_into_a_closed_pool(monkeypatch):
    async def run() -> None:
        started = _factory(monkeypatch, Loading)
        old = StandIn("a")
        pool = Pool(Config(), 1, Metrics())
        await pool.start(None, [old])  # type: ignore[arg-type]
        rolling = asyncio.create_task(pool.roll("generation 2"))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        await pool.close()  # SIGTERM while the new worker loads
        started[0].loaded.set()
        await asyncio.wait_for(rolling, 5)
        assert pool.serving == []
        assert old.gone.is_set() and started[0].gone.is_set()

    asyncio.run(asyncio.wait_for(run(), 10))


class Hung(StandIn):
    """A worker whose process never exits on its own."""

    def stop(self) -> None:
        pass


def test_shutting_down_kills_a_worker_still_running_after_serve_timeout():
    """`close` used to wait for every worker without a limit: one hung worker held up
    SIGTERM for good."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        worker = Hung("a")
        worker.pid = process.pid

        async def run() -> None:
            pool = Pool(Config(serve_timeout=0.2), 1, Metrics())
            await pool.start(None, [worker])  # type: ignore[arg-type]
            await pool.close()

        asyncio.run(asyncio.wait_for(run(), 5))
        assert process.wait(timeout=5) == -signal.SIGKILL
    finally:
        process.kill()
        process.wait()


def test_a_worker_call_that_fails_or_is_cancelled_gives_the_worker_back():
    """A worker left busy serves no one again, and the next reload waits `serve_timeout`
    for it in vain."""
    async def fails() -> None:
        raise ValueError("not a worker's death")

    async def run() -> None:
        worker = StandIn("a")
        pool = Pool(Config(), 1, Metrics())
        await pool.start(None, [worker])  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await on_a_worker(pool, 1.0, fails)
        assert not worker.busy
        never = asyncio.Event()
        call = asyncio.create_task(on_a_worker(pool, 1.0, never.wait))
        await asyncio.sleep(0.1)
        call.cancel()  # the request went away
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert not worker.busy
        assert await asyncio.wait_for(pool.take(), 1) is worker

    asyncio.run(asyncio.wait_for(run(), 10))


class Stuck(StandIn):
    async def predict(self, records: list[dict], explain: bool) -> list[Prediction]:
        await asyncio.Event().wait()
        return []


def test_a_cancelled_batch_gives_its_worker_back():
    async def run() -> None:
        worker = Stuck("a")
        pool = Pool(Config(), 1, Metrics())
        await pool.start(None, [worker])  # type: ignore[arg-type]
        batcher = Batcher(pool, pool.config, pool.metrics)
        running = asyncio.create_task(batcher.run())
        batcher.submit([{"id": "x"}], False)
        await asyncio.sleep(0.1)
        assert worker.busy
        running.cancel()
        await batcher.close()
        await asyncio.sleep(0)
        assert not worker.busy

    asyncio.run(asyncio.wait_for(run(), 10))
