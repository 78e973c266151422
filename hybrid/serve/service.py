"""What the routes call: one service, one model generation at a time, and its workers.

States: "starting" (the workers load the model: /v1/ready says 503), "ready", "failed"
(the model would not load: the server exits 4), "stopping" (SIGTERM: requests drain).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from hybrid.batch.tag_file import output_row
from hybrid.config import Config
from hybrid.errors import HybridError, ModelError
from hybrid.ingest.article import ArticleError, parse_article
from hybrid.learn.prediction import Prediction
from hybrid.mongo.store import text_fields
from hybrid.serve.batching import Batcher
from hybrid.serve.explain import tag_reasons
from hybrid.serve.feedback import Feedback, ReviewQueue
from hybrid.serve.generation import Generation, pin
from hybrid.serve.llm import Fallback, open_fallback
from hybrid.serve.metrics import Metrics
from hybrid.serve.pool import Pool
from hybrid.serve.problems import Problem, article_problem
from hybrid.serve.workers import Worker
from hybrid.taxonomy import Taxonomy

log = logging.getLogger("hybrid.serve")


class Service:
    """`generation`: the model verified before the server started (`launch`), and
    `starting` its workers, already loading."""

    def __init__(self, config: Config, generation: Generation, starting: list[Worker],
                 taxonomy: Taxonomy | None = None, labels: str | None = None,
                 data: str | None = None, api_key: str | None = None) -> None:
        self.config = config
        self.taxonomy = taxonomy or generation.taxonomy
        self.api_key = api_key
        self.metrics = Metrics()
        self.pool = Pool(config, config.serve_workers, self.metrics)
        self.batcher = Batcher(self.pool, config, self.metrics)
        self.feedback = Feedback(config, labels, self.pool)
        self.review = ReviewQueue(config, data, labels, self.pool)
        self.generation = generation
        self._starting = starting
        self.fallback: Fallback | None = None
        self.state = "starting"
        self.started = time.monotonic()  # the server sets when it began starting
        self.exiting: Callable[[], bool] = lambda: False  # the server is draining (SIGTERM)
        self.on_fatal: Callable[[HybridError], None] = lambda exc: None
        self._reloading = asyncio.Lock()
        self._numbers = generation.number
        self._tasks: set[asyncio.Task] = set()

    # ---- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        """The server answers /v1/health (and 503 on /v1/ready) while the workers load."""
        self._spawn(self.batcher.run())
        self._spawn(self._load())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load(self) -> None:
        generation = self.generation
        try:
            await self.pool.start(generation, self._starting)
            self.fallback = await asyncio.to_thread(open_fallback, self.config, generation,
                                                    self.metrics)
        except HybridError as exc:
            self.state = "failed"
            log.error("event=load_failed error=%s", exc)
            self.on_fatal(exc)
            return
        self.metrics.show_model(generation.summary())
        self.state = "ready"
        log.info("event=ready seconds=%.2f workers=%d model=%s", time.monotonic() - self.started,
                 self.pool.size, generation.source)

    async def stop(self) -> None:
        self.state = "stopping"
        for task in list(self._tasks):
            task.cancel()
        await self.batcher.close()
        await self.pool.close()
        if self.fallback is not None:
            self.fallback.retire()
        self.generation.discard()

    def serving(self) -> Generation:
        """The generation that serves, or 503. A request that reaches the app while the
        server drains (SIGTERM) is still answered: it was accepted before the socket closed."""
        if self.state != "ready" or not self.pool.ready:
            why = {"starting": "the model is loading", "failed": "the model did not load",
                   "stopping": "the server is stopping"}.get(self.state, "no worker serves")
            raise Problem(503, f"not ready: {why}", headers={"Retry-After": "1"})
        return self.generation

    def ready(self) -> Generation:
        """/v1/ready: also 503 while draining, so a load balancer sends nothing new."""
        if self.exiting():
            raise Problem(503, "not ready: the server is stopping")
        return self.serving()

    # ---- suggestions -----------------------------------------------------------------------
    async def suggest(self, record: Any, explain: bool) -> dict[str, Any]:
        self.serving()
        try:
            parse_article(record, self.config, with_labels=False)
        except ArticleError as exc:
            raise article_problem(exc) from exc
        (prediction, generation), = await self._predict([record], explain)
        if prediction.error:
            raise Problem(422, prediction.error, article=prediction.id)
        prediction = await self._refine(record, prediction)
        return self._answer(record, prediction, generation, explain)

    async def suggest_batch(self, records: list[Any], explain: bool) -> dict[str, Any]:
        self.serving()
        answers = await self._predict(records, explain)
        refined = await asyncio.gather(*(self._refine(record, prediction) for record,
                                         (prediction, _) in zip(records, answers, strict=True)))
        return {"results": [self._answer(record, p, generation, explain) for record, p, (
            _, generation) in zip(records, refined, answers, strict=True)]}

    async def _predict(self, records: list[Any], explain: bool
                       ) -> list[tuple[Prediction, Generation]]:
        futures = self.batcher.submit(records, explain)
        try:
            async with asyncio.timeout(self.config.serve_timeout):
                return list(await asyncio.gather(*futures))
        except TimeoutError:
            for future in futures:
                future.cancel()
            raise Problem(503, f"no answer within {self.config.serve_timeout:g}s "
                               "(serve_timeout): the server is overloaded",
                          headers={"Retry-After": "5"}) from None

    async def _refine(self, record: Any, prediction: Prediction) -> Prediction:
        fallback = self.fallback
        if fallback is None or prediction.error:
            return prediction
        return await fallback.apply(record, prediction)

    def _answer(self, record: Any, p: Prediction, generation: Generation, explain: bool
                ) -> dict[str, Any]:
        """`tag-file`'s line for the article, with the confidence, flags and model."""
        row = output_row(p)
        if not p.error:
            row.update(confidence=p.confidence, source=p.source, flags=p.flags,
                       zero_shot=p.zero_shot)
        row["model"] = generation.summary()
        if explain and not p.error:
            text = "\n".join(v for name in text_fields(self.config)
                              if isinstance(v := record.get(name), str))
            row["explain"] = {**p.explain(), "tag_reasons": tag_reasons(p, text)}
        return row

    # ---- people ----------------------------------------------------------------------------
    async def save_feedback(self, payload: Any) -> dict[str, Any]:
        self.serving()
        saved = await self.feedback.save(payload)
        self.review.saved(saved["id"])
        return saved

    async def review_queue(self, limit: int) -> dict[str, Any]:
        generation = self.serving()
        rows = await self.review.rows(limit, generation, self.config.serve_timeout)
        return {"articles": rows, "model": generation.summary()}

    def describe(self) -> dict[str, Any]:
        generation = self.serving()
        return {**generation.describe(), "workers": len(self.pool.serving),
                "max_categories": self.config.max_categories, "llm_mode": self.config.llm_mode,
                **({"llm_policy": asdict(self.fallback.refiner.policy)} if self.fallback else {}),
                "feedback": self.feedback.where}

    # ---- reload ----------------------------------------------------------------------------
    async def reload(self, source: str | None = None) -> dict[str, Any]:
        """Serve the model in `source` (default: the directory served now, rewritten by the
        nightly retrain) once it is verified, loads and predicts; else keep the old one."""
        old = self.serving()
        if self._reloading.locked():
            raise Problem(409, "a reload is already in progress")
        async with self._reloading:
            started = time.monotonic()
            self._numbers += 1
            source = str(source or old.source)
            try:
                generation = await asyncio.to_thread(pin, source, self._numbers, self.taxonomy,
                                                     self.config.model_key)
            except ModelError as exc:
                raise self._refused(exc, old) from exc
            fallback = None
            try:
                fallback = await asyncio.to_thread(open_fallback, self.config, generation,
                                                   self.metrics)
                await self.pool.roll(generation)
            except HybridError as exc:
                if fallback is not None:
                    fallback.retire()
                generation.discard()
                raise self._refused(exc, old) from exc
            self.generation = generation
            if self.fallback is not None:
                self.fallback.retire()
            self.fallback = fallback
            old.discard()
            self.metrics.reloads.labels("reloaded").inc()
            self.metrics.show_model(generation.summary())
            seconds = round(time.monotonic() - started, 2)
            log.info("event=reloaded model=%s generation=%d seconds=%.2f", source,
                     generation.number, seconds)
            return {"status": "reloaded", "model": generation.summary(),
                    "previous": old.summary(), "seconds": seconds}

    def _refused(self, exc: HybridError, old: Generation) -> Problem:
        self.metrics.reloads.labels("refused").inc()
        log.warning("event=reload_refused error=%s", exc.format_message())
        return Problem(422, f"model refused, still serving {old.source} (generation "
                            f"{old.number}, created {old.manifest['created_at']}): "
                            f"{exc.format_message()}", field="model")

    def reload_in_background(self) -> None:
        """SIGHUP: reload the directory served now; the outcome goes to the log."""
        async def reload() -> None:
            try:
                await self.reload()
            except Problem as exc:
                log.warning("event=sighup_reload_failed error=%s", exc.detail)

        self._spawn(reload())
