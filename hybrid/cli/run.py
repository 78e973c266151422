"""`hybrid run`: the nightly job over a MongoDB collection."""

from __future__ import annotations

from typing import Any

import click

from hybrid.batch.processes import start_pool_early
from hybrid.cli.base import HybridCommand, HybridContext, emit
from hybrid.cli.options import (
    engine_options,
    field_options,
    json_option,
    llm_options,
    model_option,
    mongo_options,
    workers_option,
)
from hybrid.errors import PartialFailure


@click.command(cls=HybridCommand)
@model_option()
@mongo_options
@field_options
@click.option("--all", "retag_all", is_flag=True,
              help="Re-tag every article but manual ones; a rerun after a crash resumes.")
@click.option("--retag", type=click.Choice(["affected", "all"]),
              help="After `hybrid retrain`: 'affected' re-tags the articles holding a category "
                   "the model's list no longer has, and moves manual labels to the new names; "
                   "'all' is --all.")
@click.option("--since", type=click.DateTime(),
              help="Also re-tag articles not tagged since DATE (local time).")
@click.option("--limit", type=click.IntRange(min=1), help="Tag at most N articles.")
@workers_option
@engine_options
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Articles per model batch, bulk write and checkpoint (default: 200).")
@click.option("--dry-run", is_flag=True,
              help="Write nothing; print a JSON line per article whose labels would change.")
@json_option("Print the run report as JSON.")
@llm_options
@click.pass_obj
def run(obj: HybridContext, model_dir: str, retag_all: bool, retag: str | None, since: Any,
        limit: int | None, dry_run: bool, as_json: bool, **settings: Any) -> None:
    """Tag the new and changed articles of a MongoDB collection (the nightly job).

    Never writes an article whose labels are manual (hybrid.source "manual" or
    hybrid.locked true), nor any field but the categories, tags and hybrid fields.
    Resumes after a crash; the report goes to the hybrid_runs collection. With --quiet
    (cron) a structured log line per batch replaces the progress bar. With --engine ray
    the same job runs on a Ray cluster, a checkpoint per partition (docs/scale.md).
    """
    config = obj.settings(**settings)
    # the `workers` setting counts local processes; Ray's default is the cluster's CPUs
    workers = settings["workers"] if config.engine == "ray" else config.workers
    start_pool_early(config.engine, workers, model_dir)
    from hybrid.batch.nightly import run as run_job  # after: beside the fork server's imports
    from hybrid.learn.artifacts import read_manifest
    from hybrid.mongo.runs import Selection
    from hybrid.mongo.store import Store

    selection = Selection.from_flags(retag_all, retag, since, limit,
                                     read_manifest(model_dir)["categories"])
    with Store(config) as store, obj.progress(total=store.estimated_count(), unit="article",
                                              desc="run") as bar:
        report = run_job(store, model_dir, selection, workers=workers, engine=config.engine,
                         dry_run=dry_run, progress=bar.update, show=click.echo)
    emit(report.document(), as_json, report.summary())
    if report.failure_rate > config.max_failure_rate:
        raise PartialFailure(f"{report.failure_rate:.1%} of articles failed, over the limit of "
                             f"{config.max_failure_rate:.1%} (max_failure_rate)")
