"""The model processes: each loads one generation's model once and predicts the batches it
is handed with `tag-file`'s own code (`predict_records`), so an answer over HTTP is the
answer `tag-file` gives.

A worker is a process of its own (a one-process pool forked from the fork server that
imported scikit-learn once, as `tag-file`'s are), so the front process knows which worker
is free, can retire one at a time during a reload, and replace one that dies. Workers
ignore SIGINT and SIGTERM: the front process drains the requests first, then stops them;
they die with it if it is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from hybrid.batch.predictor import predict_records
from hybrid.batch.processes import die_with_parent, fork_server, one_thread_per_process
from hybrid.config import Config
from hybrid.errors import ModelError
from hybrid.learn.prediction import Prediction
from hybrid.serve.generation import Generation

# what a new worker must tag before it serves: the model loads, and it also predicts
PROBE = {"id": "hybrid-serve-probe", "title": "hybrid serve", "description": None,
         "content": "A new model answers this article before it serves any request."}
START_SECONDS = 300.0

_state: dict[str, Any] = {}


# ---- in the worker process ------------------------------------------------------------------
def _init(model_dir: str, config: Config, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)
    one_thread_per_process()
    _state["config"] = config
    try:
        from hybrid.learn.model import HybridModel

        _state["model"] = HybridModel.load(model_dir, config=config)
    except Exception as exc:  # said by `_ready`, as one line: never a traceback in the log
        _state["error"] = f"{type(exc).__name__}: {exc}" if not isinstance(
            exc, ModelError) else str(exc)


def _ready() -> dict[str, Any]:
    if "error" in _state:
        return {"error": _state["error"]}
    prediction = predict_records(_state["model"], [PROBE], _state["config"])[0]
    if prediction.error:
        return {"error": f"the model loads but cannot predict: {prediction.error}"}
    return {"digest": _state["model"].manifest["digest"], "pid": os.getpid()}


def _predict(records: list[Any], explain: bool) -> list[Prediction]:
    return predict_records(_state["model"], records, _state["config"], explain)


def loaded() -> tuple[Any, Config]:
    """In a worker: its model and settings, for the work other modules send it."""
    return _state["model"], _state["config"]


# ---- in the front process -------------------------------------------------------------------
def launch(generation: Generation, config: Config, count: int) -> list[Worker]:
    """`count` workers of `generation`, loading side by side from now on (`Pool.start`
    waits for them)."""
    return [Worker(generation, config) for _ in range(count)]


class Worker:
    """One model process of one generation. `busy` while a batch is in it."""

    def __init__(self, generation: Generation, config: Config) -> None:
        self.generation = generation
        context = fork_server(generation.manifest["embedder"])
        self._pool = ProcessPoolExecutor(1, mp_context=context, initializer=_init,
                                         initargs=(str(generation.path), config, os.getpid()))
        self._loading = self._pool.submit(_ready)  # the process starts loading at once
        self.busy = False
        self.retired = False
        self.pid: int | None = None
        self._exited: Future[None] = Future()
        self._stopping = False

    async def start(self) -> None:
        """Wait until the model is loaded and has tagged the probe article; `ModelError` if
        either fails."""
        try:
            async with asyncio.timeout(START_SECONDS):
                answer = await asyncio.wrap_future(self._loading)
        except TimeoutError:
            self.stop()
            raise ModelError(f"{self.generation.source}: a worker took over "
                             f"{START_SECONDS:g}s to load the model") from None
        except Exception as exc:  # the process died while loading (out of memory?)
            self.stop()
            raise ModelError(f"{self.generation.source}: a worker died while loading the "
                             f"model ({type(exc).__name__}: {exc})") from exc
        if "error" in answer:
            self.stop()
            raise ModelError(answer["error"])
        if answer["digest"] != self.generation.manifest["digest"]:
            self.stop()
            raise ModelError(f"{self.generation.source}: a worker loaded another model than "
                             "the one verified")
        self.pid = answer["pid"]

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    async def predict(self, records: list[Any], explain: bool) -> list[Prediction]:
        return await self.call(_predict, records, explain)

    def stop(self) -> None:
        """The process exits once its batch, if any, is answered (`exited` says when)."""
        if not self._stopping:  # one shutdown per pool: two at once race on its internals
            self._stopping = True
            threading.Thread(target=self._shut_down, name="worker-stop", daemon=True).start()

    def _shut_down(self) -> None:
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._exited.set_result(None)

    async def exited(self, timeout: float | None = None) -> bool:
        """Wait until the process has exited (after `stop`); False if `timeout` passed
        first."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(asyncio.wrap_future(self._exited))
        except TimeoutError:
            return False
        return True
