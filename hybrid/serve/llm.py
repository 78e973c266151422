"""The LLM fallback of `run` (`hybrid.llm.refine`, with the same settings), one article at
a time, under a deadline: an answer that is late, or a server that is slow or failing,
gives the model's own answer in time, flagged in `llm`, never an error.

A call still running at the deadline goes on in its thread and its answer is cached, so
the article's next suggestion has it at once. At most `llm_concurrency` calls run; an
article that finds no free slot before its deadline is answered by the model. The budget
(`llm_max_calls`, `llm_max_tokens`) is that of one run: here, of one loaded model, so a
nightly reload starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from hybrid.config import Config
from hybrid.ingest.article import parse_article
from hybrid.learn.prediction import Prediction
from hybrid.llm.refine import LLMRefiner, open_refiner
from hybrid.serve.generation import Generation
from hybrid.serve.metrics import Metrics

log = logging.getLogger("hybrid.serve")


def open_fallback(config: Config, generation: Generation, metrics: Metrics) -> Fallback | None:
    """None with `llm_mode` "off"; this loads the model into the front process (for the
    few-shot neighbours), as `tag-file` does with the LLM on."""
    if config.llm_mode == "off":
        return None
    return Fallback(open_refiner(config, generation.path), config, metrics)


class Fallback:
    def __init__(self, refiner: LLMRefiner, config: Config, metrics: Metrics) -> None:
        self.refiner = refiner
        self.config = config
        self.metrics = metrics
        self.deadline = config.serve_llm_deadline
        self._slots = asyncio.Semaphore(max(1, config.llm_concurrency))
        self._calls = 0
        self._retired = False

    async def apply(self, record: Any, prediction: Prediction) -> Prediction:
        if not self.refiner.wants(prediction):
            return prediction
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.deadline
        try:
            async with asyncio.timeout_at(ends):
                await self._slots.acquire()
        except TimeoutError:
            return self._flag(prediction, "busy", f"no free LLM slot within {self.deadline:g}s "
                                                  "(llm_concurrency): the model's answer")
        self._calls += 1
        call = loop.run_in_executor(None, self._refine, record, prediction)
        call.add_done_callback(self._done)
        try:
            async with asyncio.timeout_at(ends):
                refined = await asyncio.shield(call)
        except TimeoutError:
            return self._flag(prediction, "timeout", f"no answer within {self.deadline:g}s "
                                                     "(serve_llm_deadline): the model's answer")
        except Exception as exc:  # never an error for the article: the model's answer
            return self._flag(prediction, "error", f"{type(exc).__name__}: {exc}")
        self.metrics.llm.labels((refined.llm or {}).get("status", "ok")).inc()
        return refined

    def _refine(self, record: Any, prediction: Prediction) -> Prediction:
        article = parse_article(record, self.config, with_labels=False)
        return self.refiner.refine_pairs([(article, prediction)])[0]

    def _done(self, call: asyncio.Future) -> None:
        self._slots.release()
        self._calls -= 1
        if not call.cancelled() and call.exception() is not None:
            log.warning("LLM fallback failed: %s", call.exception())
        if self._retired and self._calls == 0:
            self.refiner.close()

    def _flag(self, prediction: Prediction, status: str, why: str) -> Prediction:
        self.metrics.llm.labels(status).inc()
        return replace(prediction, llm={"status": status, "error": why})

    def retire(self) -> None:
        """A newer model's fallback took over: close once the calls in flight are done."""
        self._retired = True
        if self._calls == 0:
            self.refiner.close()
