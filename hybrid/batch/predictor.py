"""Raw records in, predictions out, in order: in this process or a pool of worker processes.

Shared by `tag-file` and the nightly job. One bad record becomes a `Prediction` with
`error`; it never stops the stream. Memory stays flat: at most 2 batches per worker wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.batch.processes import die_with_parent, fork_server, one_thread_per_process
from hybrid.config import Config
from hybrid.errors import EnvironmentFault, HybridError
from hybrid.ingest.article import Article, ArticleError, article_id_of, parse_article
from hybrid.ingest.ids import shown
from hybrid.learn import artifacts
from hybrid.learn.prediction import Prediction

if TYPE_CHECKING:
    from hybrid.learn.model import HybridModel

Record = dict[str, Any] | ArticleError
log = logging.getLogger("hybrid.batch")


def predict_records(model: HybridModel, records: list[Record], config: Config,
                    explain: bool = False) -> list[Prediction]:
    """`explain`: with what `predict --explain` shows (neighbours, keyword scores)."""
    out: list[Prediction | None] = [None] * len(records)
    articles, slots = [], []
    for i, raw in enumerate(records):
        try:
            articles.append(parse_article(raw, config, with_labels=False))
            slots.append(i)
        except ArticleError as exc:
            out[i] = Prediction(exc.article_id, error=str(exc))
        except Exception as exc:  # whatever a record holds, it is one error line
            article_id = article_id_of(raw, config.id_field)
            out[i] = Prediction(article_id, error=f"article {shown(article_id)!r}: "
                                                  f"{type(exc).__name__}: {str(exc)[:200]}")
    try:
        predictions = model.predict(articles, explain)
    except EnvironmentFault:  # no article's fault: the run stops, and marks none
        raise
    except Exception:  # isolate the article that broke the batch
        predictions = [_predict_one(model, a, explain) for a in articles]
    for i, pred in zip(slots, predictions, strict=True):
        out[i] = pred
    return out  # type: ignore[return-value]


def _predict_one(model: HybridModel, article: Article, explain: bool) -> Prediction:
    try:
        return model.predict([article], explain)[0]
    except EnvironmentFault:
        raise
    except Exception as exc:
        return Prediction(article.id, flags=list(article.flags),
                          error=f"article {shown(article.id)!r}: {type(exc).__name__}: {exc}")


_worker: tuple[HybridModel, Config] | None = None
MAX_POOL_RESTARTS = 20  # worker processes that die this often are not one bad article


def _init_worker(model_dir: str, config: Config, parent: int) -> None:
    global _worker
    from hybrid.learn.model import HybridModel

    die_with_parent(parent)
    one_thread_per_process()
    _worker = (HybridModel.load(model_dir, config=config), config)


def _work(records: list[Record]) -> list[Prediction]:
    assert _worker is not None, "worker was not initialised"
    return predict_records(_worker[0], records, _worker[1])


class Predictor:
    """Loads the model once (per worker) and maps record batches to predictions, in order.

    The model is verified here, before any worker starts, so a corrupt one is one clear
    error. A worker that dies (a crash, the OOM killer) breaks the pool: a new pool takes
    the batches in flight, and the batch that was awaited is redone one article at a time,
    so only an article that kills its worker again is lost, as an error line.
    """

    def __init__(self, model_dir: str | Path, config: Config, workers: int = 1) -> None:
        self.model_dir = str(model_dir)
        self.config = config
        self.workers = max(1, workers)
        self._model: HybridModel | None = None
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0
        self._embedder: str | None = None
        if self.workers == 1:
            from hybrid.learn.model import HybridModel

            self._model = HybridModel.load(self.model_dir, config=config)
        else:
            self._embedder = artifacts.verify(self.model_dir, key=config.model_key)["embedder"]
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=fork_server(self._embedder),
                                   initializer=_init_worker,
                                   initargs=(self.model_dir, self.config, os.getpid()))

    def map(self, record_batches: Iterable[list[Record]]
            ) -> Iterator[tuple[list[Record], list[Prediction]]]:
        if self._pool is None:
            for batch in record_batches:
                yield batch, predict_records(self._model, batch, self.config)
            return
        pending: deque[tuple[list[Record], Future]] = deque()
        for batch in record_batches:
            pending.append((batch, self._pool.submit(_work, batch)))
            if len(pending) >= 2 * self.workers:
                yield self._result(*pending.popleft(), pending)
        while pending:
            yield self._result(*pending.popleft(), pending)

    def _result(self, batch: list[Record], future: Future,
                pending: deque[tuple[list[Record], Future]]
                ) -> tuple[list[Record], list[Prediction]]:
        try:
            return batch, future.result()
        except BrokenProcessPool:
            self._restart(pending)
            return batch, [self._alone(record, pending) for record in batch]

    def _alone(self, record: Record, pending: deque[tuple[list[Record], Future]]
               ) -> Prediction:
        """One record in a fresh pool; an error line if it kills its worker again."""
        try:
            return self._pool.submit(_work, [record]).result()[0]
        except BrokenProcessPool:
            self._restart(pending)
            article_id = (record.article_id if isinstance(record, ArticleError)
                          else article_id_of(record, self.config.id_field))
            return Prediction(article_id, error=f"article {article_id!r}: the worker process "
                                                "died while tagging it")

    def _restart(self, pending: deque[tuple[list[Record], Future]]) -> None:
        """A new pool, and every batch in flight submitted to it again."""
        self.restarts += 1
        log.warning("event=worker_died restarts=%d in_flight=%d", self.restarts, len(pending))
        if self.restarts > MAX_POOL_RESTARTS:
            raise HybridError(f"worker processes died {self.restarts} times; stopping (is the "
                              "machine out of memory?)")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        for i, (batch, _) in enumerate(pending):
            pending[i] = (batch, self._pool.submit(_work, batch))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Refine = Callable[[list[tuple[Article, Prediction]]], list[Prediction]]


def keep_model_answers(pairs: list[tuple[Article, Prediction]]) -> list[Prediction]:
    return [prediction for _, prediction in pairs]


def open_llm_step(config: Config, model_dir: str | Path) -> Any:
    """The LLM step (`open_refiner`) when it is on, else a null context. Its modules (an
    HTTP client, the cleaner, 0.2-0.3 s to import) load only then: the parent of a pool of
    workers otherwise never runs them."""
    if config.llm_mode == "off":
        return contextlib.nullcontext()
    from hybrid.llm.refine import open_refiner

    return open_refiner(config, model_dir)


def refine_batch(refine: Refine, records: Sequence[Record], predictions: list[Prediction],
                 config: Config) -> list[Prediction]:
    """The predictions of a batch after `refine` (the LLM step) saw the ones without error."""
    ok = [i for i, p in enumerate(predictions) if not p.error]
    refined = refine([(parse_article(records[i], config, with_labels=False), predictions[i])
                      for i in ok])
    out = list(predictions)
    for i, prediction in zip(ok, refined, strict=True):
        out[i] = prediction
    return out
