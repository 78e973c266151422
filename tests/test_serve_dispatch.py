"""Which worker of `hybrid serve` takes a request, and when (the front process's pool and
batcher, with stand-in workers: the choice is the front's, whatever the workers compute)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import fastapi.dependencies.utils
import httpx

from hybrid.config import Config
from hybrid.learn.prediction import Prediction
from hybrid.serve import pool as pool_module
from hybrid.serve.app import create_app
from hybrid.serve.batching import Batcher
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

    async def exited(self, timeout: float | None = None) -> bool:
        await self.gone.wait()
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
