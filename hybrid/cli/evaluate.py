"""`hybrid eval`, `hybrid cv` and `hybrid report`: how good are the model and the labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hybrid.cli.base import HybridCommand, HybridContext, emit
from hybrid.cli.options import (
    data_option,
    folds_option,
    json_option,
    labelled_options,
    model_option,
    taxonomy_option,
)
from hybrid.errors import UsageError
from hybrid.evaluation.crossval import cross_validate, evaluate
from hybrid.evaluation.tables import format_report
from hybrid.ingest.records import load_articles
from hybrid.labels.sources import labelled_articles
from hybrid.learn.model import HybridModel
from hybrid.output import refuse_inputs, write_text
from hybrid.taxonomy import load_taxonomy

report_json_option = click.option("--out", type=click.Path(dir_okay=False),
                                  help="Also write the report as JSON.")


def _emit_report(report: dict[str, Any], out: str | None, as_json: bool) -> None:
    if out:
        write_text(out, json.dumps(report, ensure_ascii=False, indent=1))
    emit(report, as_json, format_report(report))


@click.command("eval", cls=HybridCommand)
@model_option()
@data_option(required=True, help="Labelled test articles (JSONL).")
@click.option("--baseline-data", type=click.Path(exists=True, dir_okay=False),
              help="Training JSONL for the LR baselines (without it, only the tag baseline runs).")
@report_json_option
@json_option()
@click.pass_obj
def eval_command(obj: HybridContext, model_dir: str, data: str, baseline_data: str | None,
                 out: str | None, as_json: bool) -> None:
    """Score a trained model on labelled articles, beside the baselines."""
    refuse_inputs(out, [data, baseline_data, model_dir])
    model = HybridModel.load(model_dir, config=obj.config)
    train = load_articles(baseline_data, obj.config) if baseline_data else None
    _emit_report(evaluate(model, load_articles(data, obj.config), obj.config, train), out,
                 as_json)


@click.command(cls=HybridCommand)
@data_option(required=True)
@taxonomy_option()
@folds_option()
@click.option("--seed", default=0, show_default=True)
@report_json_option
@json_option()
@click.pass_obj
def cv(obj: HybridContext, data: str, taxonomy: str, folds: int, seed: int, out: str | None,
       as_json: bool) -> None:
    """K-fold cross-validation of our model and the baselines, in one run."""
    refuse_inputs(out, [data, taxonomy])
    articles = load_articles(data, obj.config)
    with obj.steps(folds * 2, "cv") as step:
        report = cross_validate(articles, load_taxonomy(taxonomy), obj.config, folds, seed,
                                progress=step)
    _emit_report(report, out, as_json)


@click.command(cls=HybridCommand)
@model_option()
@labelled_options(help="Labelled articles (JSONL). Articles the model trained on are predicted "
                       "out of fold; others by the model itself.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@folds_option()
@click.option("--suspects", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many likely mislabelled articles to list.")
@click.option("--proposal", type=click.Path(exists=True, dir_okay=False),
              help="A `hybrid taxonomy suggest` file: show its proposed changes too.")
@json_option("Print the summary and suspects as JSON.")
@click.pass_obj
def report(obj: HybridContext, model_dir: str, data: str | None, label_source: str | None,
           out: str, folds: int, suspects: int, proposal: str | None, as_json: bool,
           **settings: Any) -> None:
    """Label quality as one static HTML page: per-category scores, confusion, confidence and
    its calibration (ECE), coverage against threshold, risk against coverage with the routing
    ceiling, tags, likely mislabelled articles, and a proposed change of the list."""
    refuse_inputs(out, [data, model_dir, proposal])
    label_quality_report = _report_extra()
    config = obj.settings(**settings)
    model = HybridModel.load(model_dir, config=config)
    title = (f"Label quality: {Path(model_dir).name} on "
             f"{Path(data).name if data else 'manual labels'}")
    with obj.steps(folds * 2, "report") as step:
        quality = label_quality_report(model, labelled_articles(config, data, label_source),
                                       config, out, title, folds, suspects, step, proposal)
    emit(quality.as_dict(), as_json, quality.text(out))


def _report_extra() -> Any:
    """The report's plotting and cleanlab stack, or a clear usage error without it."""
    try:
        from hybrid.evaluation.report import label_quality_report
    except ImportError as exc:
        raise UsageError(f"this command needs: pip install 'hybrid[report]' ({exc})") from exc
    return label_quality_report
