"""`hybrid llm check`: measure an LLM as the fallback of a model, before it is trusted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from hybrid.cli.base import HybridContext, HybridGroup, emit
from hybrid.cli.options import folds_option, json_option, labelled_options, model_option
from hybrid.errors import UsageError
from hybrid.labels.sources import labelled_articles, parse_sources
from hybrid.llm.check.job import check_llm


@click.group(cls=HybridGroup)
def llm() -> None:
    """The optional LLM (docs/llm.md)."""


@llm.command("check")
@model_option()
@labelled_options(help="Labelled articles (JSONL) to measure on; or --label-source manual.")
@click.option("--llm-base-url", help="The LLM: an OpenAI-compatible base URL.")
@click.option("--llm-model", help="The LLM's model name.")
@click.option("--budget", default=200, show_default=True, type=click.IntRange(min=1),
              help="At most this many requests: the least confident articles, one each.")
@folds_option()
@json_option("Print the result as JSON.")
@click.pass_obj
def check(obj: HybridContext, model_dir: str, data: str | None, label_source: str | None,
          budget: int, folds: int, as_json: bool, **settings: Any) -> None:
    """Send the articles the fallback would send (the least confident, out of fold) to the
    LLM, and measure on exactly those the LLM's top-1 accuracy and the classifier's, and
    what routing at each threshold does to top-1 over the whole set, with intervals. The
    cost is printed before any call. Recommends a threshold and top k, or "do not use", and
    keeps the result in the model directory, where `--llm-mode fallback` looks for it.
    """
    if label_source is not None and parse_sources(label_source) != {"manual"}:
        raise UsageError("the check measures against people's labels: --label-source manual")
    config = obj.settings(**settings)
    articles = labelled_articles(config, data, label_source)
    where = data or f"the manual labels of {config.mongo_db}.{config.mongo_collection}"
    with obj.steps(folds * 2, "check") as step:
        result = check_llm(model_dir, config, articles, where, budget, folds, progress=step,
                           announce=lambda text: click.echo(text, err=True))
    emit(asdict(result), as_json, result.text(model_dir))
