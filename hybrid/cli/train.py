"""`hybrid train` and `hybrid retrain`: labelled articles in, a model directory out."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridCommand, HybridContext, emit
from hybrid.cli.options import (
    json_option,
    labelled_options,
    migration_option,
    model_option,
    out_dir_option,
    taxonomy_option,
    workers_option,
)
from hybrid.evaluation.retrain import retrain as retrain_model
from hybrid.evaluation.tables import format_comparison
from hybrid.labels.sources import labelled_articles, training_articles
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import load_taxonomy
from hybrid.taxonomy.change import load_map


@click.command(cls=HybridCommand)
@labelled_options(help="Labelled articles, JSONL with title/description/content/categories/"
                       "tags.")
@taxonomy_option()
@out_dir_option()
@workers_option
@json_option("Print the manifest as JSON.")
@click.pass_obj
def train(obj: HybridContext, data: str | None, label_source: str | None, taxonomy: str,
          out: str, as_json: bool, **settings: Any) -> None:
    """Train a model from labelled articles and save it to a directory; with too few labels
    (none on day one), a zero-shot model that says why."""
    config = obj.settings(**settings)
    categories = load_taxonomy(taxonomy)
    articles = training_articles(config, categories, data, label_source)
    model = HybridModel.train(articles, categories, config, progress=obj.say)
    model.save(out, config.model_key)
    emit(model.manifest, as_json, model.summary(out))


@click.command(cls=HybridCommand)
@taxonomy_option(help="The new category list (JSON).")
@model_option(help="The model trained for the old list.")
@out_dir_option()
@migration_option
@labelled_options(help="Labelled articles (JSONL), labels under the old or the new list.")
@workers_option
@json_option("Print the change and metrics as JSON.")
@click.pass_obj
def retrain(obj: HybridContext, taxonomy: str, model_dir: str, out: str, migration: str | None,
            data: str | None, label_source: str | None, as_json: bool,
            **settings: Any) -> None:
    """Retrain for a changed category list: labels move through the migration, embeddings
    come from the cache, new categories start from their descriptions."""
    config = obj.settings(**settings)
    done = retrain_model(model_dir, labelled_articles(config, data, label_source),
                         load_taxonomy(taxonomy), config,
                         load_map(migration) if migration else None, progress=obj.say)
    done.model.save(out, config.model_key)
    emit(done.as_dict(), as_json, f"{done.summary(out)}\n\n{format_comparison(done.comparison)}")
