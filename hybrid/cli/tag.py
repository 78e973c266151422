"""`hybrid predict` (one article) and `hybrid tag-file` (a JSONL file)."""

from __future__ import annotations

from typing import Any

import click

from hybrid.batch.processes import start_pool_early
from hybrid.cli.base import HybridCommand, HybridContext, emit
from hybrid.cli.options import (
    engine_options,
    json_option,
    llm_options,
    model_option,
    taxonomy_option,
    workers_option,
)
from hybrid.errors import Exit, PartialFailure
from hybrid.ingest.article import parse_article
from hybrid.ingest.records import read_one
from hybrid.taxonomy import load_taxonomy


@click.command(cls=HybridCommand)
@click.argument("article", default="-")
@model_option()
@taxonomy_option(required=False, help="Refuse the model unless it was trained for this taxonomy.")
@click.option("--explain", is_flag=True,
              help="Add probabilities, confidence, neighbours and keyword scores.")
@json_option("Compact JSON (the output is always JSON).")
@click.pass_obj
def predict(obj: HybridContext, article: str, model_dir: str, taxonomy: str | None,
            explain: bool, as_json: bool) -> None:
    """Categories and tags for one article (a JSON object in ARTICLE, or on stdin)."""
    # here, not at the top: `tag-file` shares this module, and its parent process never
    # loads a model (its workers do), so it should not pay for scikit-learn's imports
    from hybrid.learn.model import HybridModel

    model = HybridModel.load(model_dir, load_taxonomy(taxonomy) if taxonomy else None,
                             obj.config)
    record = parse_article(read_one(article), obj.config)
    prediction = model.predict([record], explain=explain)[0]
    if prediction.error:
        raise PartialFailure(prediction.error)
    emit(prediction.explain() if explain else prediction.output(), True)


@click.command("tag-file", cls=HybridCommand)
@click.argument("infile", type=click.Path(exists=True, dir_okay=False))
@click.argument("outfile", type=click.Path(dir_okay=False, allow_dash=True))
@model_option()
@workers_option
@engine_options
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@json_option("Print the summary as JSON.")
@llm_options
@click.pass_obj
def tag_file(obj: HybridContext, infile: str, outfile: str, model_dir: str, batch_size: int,
             as_json: bool, **settings: Any) -> None:
    """Tag every article of a JSONL file, streaming, into OUTFILE ("-": stdout).

    Each output line is {"id", "categories", "tags"}, or {"id", "error"} for an article
    that could not be read. With an LLM, lines it touched add "source" and "llm". With
    --engine ray, Ray workers predict and this process reads and writes the files.
    """
    config = obj.settings(**settings)
    workers = settings["workers"] if config.engine == "ray" else config.workers
    start_pool_early(config.engine, workers, model_dir)
    from hybrid.batch.tag_file import tag_file as tag_records

    with obj.progress(unit="article", desc="tag-file") as bar:
        summary = tag_records(infile, outfile, model_dir, config, workers, batch_size,
                              bar.update)
    emit(summary.as_dict(), as_json, summary.text(), err=outfile == "-")
    if summary.failed:
        click.get_current_context().exit(Exit.PARTIAL)
