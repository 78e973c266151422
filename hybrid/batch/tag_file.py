"""`hybrid tag-file`: a JSONL file of articles in, one JSON line of labels per article out,
streamed in batches, in order, whatever any one record holds."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.batch.predictor import Predictor, open_llm_step, refine_batch
from hybrid.config import Config
from hybrid.ingest.records import read_jsonl, to_json
from hybrid.learn.prediction import Prediction
from hybrid.llm.stats import LLMStats
from hybrid.output import open_output


@dataclass
class TagFileSummary:
    outfile: str
    articles: int = 0
    failed: int = 0
    seconds: float = 0.0
    llm: LLMStats | None = None

    @property
    def articles_per_second(self) -> float:
        return round(self.articles / max(self.seconds, 1e-9), 1)

    def as_dict(self) -> dict[str, Any]:
        out = {"articles": self.articles, "failed": self.failed,
               "seconds": round(self.seconds, 2), "articles_per_second": self.articles_per_second}
        return out if self.llm is None else {**out, "llm": self.llm.as_dict()}

    def text(self) -> str:
        text = (f"tagged {self.articles} articles ({self.failed} failed) in {self.seconds:.1f}s, "
                f"{self.articles_per_second}/s → {self.outfile}")
        return text if self.llm is None else f"{text}\n{self.llm.summary()}"


def output_row(p: Prediction) -> dict[str, Any]:
    """{"id", "categories", "tags"}, or {"id", "error"}; with "source" and "llm" when an LLM
    touched the article."""
    row = {"id": p.id, "error": p.error} if p.error else {"id": p.id, **p.output()}
    if p.llm:
        row.update(source=p.source, llm=p.llm)
    return row


def tag_file(infile: str | Path, outfile: str | Path, model_dir: str | Path, config: Config,
             workers: int | None = 1, batch_size: int = 64,
             progress: Callable[[int], object] = lambda n: None) -> TagFileSummary:
    """With `config.engine` "ray", `workers` Ray workers (None: one per CPU of the cluster)
    predict; the files are read and written here either way. `outfile` ("-": stdout) is
    put in place when every article is written, and is never `infile`."""
    summary = TagFileSummary(str(outfile))
    started = time.perf_counter()
    with (open_llm_step(config, model_dir) as refiner,  # first: it may refuse (no check)
          open_output(outfile, inputs=[infile]) as out,
          _predictor(model_dir, config, workers) as predictor):
        for records, predictions in predictor.map(ramped(read_jsonl(infile), batch_size)):
            if refiner is not None:
                predictions = refine_batch(refiner.refine_pairs, records, predictions, config)
            for p in predictions:
                out.write(to_json(output_row(p)) + "\n")
                summary.articles += 1
                summary.failed += bool(p.error)
            progress(len(predictions))
        if refiner is not None:
            summary.llm = refiner.stats
    summary.seconds = time.perf_counter() - started
    return summary


def ramped(records: Iterable[Any], batch_size: int, first: int = 4) -> Iterator[list[Any]]:
    """Batches of `batch_size`, the first ones smaller (4, 8, 16, ...): the first article is
    written after a batch of a few, not after a full one (64 long posts are seconds of
    work), and later batches still spread the per-batch cost."""
    records = iter(records)
    size = min(first, batch_size)
    while batch := list(itertools.islice(records, size)):
        yield batch
        size = min(2 * size, batch_size)


def _predictor(model_dir: str | Path, config: Config, workers: int | None) -> Any:
    if config.engine == "ray":
        from hybrid.batch.ray_engine import RayPredictor  # Ray is an optional extra

        return RayPredictor(model_dir, config, workers)
    return Predictor(model_dir, config, workers or 1)
