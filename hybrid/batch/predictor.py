"""Raw records in, predictions out, in order: in this process or a pool of worker processes.

Shared by `tag-file` and the nightly job. One bad record becomes a `Prediction` with
`error`; it never stops the stream. Memory stays flat: at most 2 batches per worker wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from hybrid.batch.processes import one_thread_per_process
from hybrid.config import Config
from hybrid.ingest.article import Article, ArticleError, parse_article
from hybrid.learn.model import HybridModel
from hybrid.learn.prediction import Prediction

Record = dict[str, Any] | ArticleError


def predict_records(model: HybridModel, records: list[Record], config: Config) -> list[Prediction]:
    out: list[Prediction | None] = [None] * len(records)
    articles, slots = [], []
    for i, raw in enumerate(records):
        try:
            if isinstance(raw, ArticleError):
                raise raw
            articles.append(parse_article(raw, config, with_labels=False))
            slots.append(i)
        except ArticleError as exc:
            out[i] = Prediction(exc.article_id, error=str(exc))
    try:
        predictions = model.predict(articles)
    except Exception:  # isolate the article that broke the batch
        predictions = [_predict_one(model, a) for a in articles]
    for i, pred in zip(slots, predictions, strict=True):
        out[i] = pred
    return out  # type: ignore[return-value]


def _predict_one(model: HybridModel, article: Article) -> Prediction:
    try:
        return model.predict([article])[0]
    except Exception as exc:
        return Prediction(article.id, flags=list(article.flags),
                          error=f"article {article.id!r}: {type(exc).__name__}: {exc}")


_worker: tuple[HybridModel, Config] | None = None


def _init_worker(model_dir: str, config: Config) -> None:
    global _worker
    one_thread_per_process()
    _worker = (HybridModel.load(model_dir, config=config), config)


def _work(records: list[Record]) -> list[Prediction]:
    assert _worker is not None, "worker was not initialised"
    return predict_records(_worker[0], records, _worker[1])


class Predictor:
    """Loads the model once (per worker) and maps record batches to predictions, in order."""

    def __init__(self, model_dir: str | Path, config: Config, workers: int = 1) -> None:
        self.model_dir = str(model_dir)
        self.config = config
        self.workers = max(1, workers)
        self._model: HybridModel | None = None
        self._pool: ProcessPoolExecutor | None = None
        if self.workers == 1:
            self._model = HybridModel.load(self.model_dir, config=config)
        else:
            # spawn: workers start clean instead of inheriting the parent's threads and sockets
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                             initializer=_init_worker,
                                             initargs=(self.model_dir, config))

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
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

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
