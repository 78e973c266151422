"""`hybrid taxonomy diff`: what a new category list changes, and for how many articles;
`hybrid taxonomy suggest`: how the list should change, as a proposal file."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridContext, HybridGroup, emit
from hybrid.cli.options import (
    field_options,
    json_option,
    migration_option,
    model_option,
    mongo_options,
)
from hybrid.labels.impact import affected
from hybrid.output import refuse_inputs
from hybrid.taxonomy import load_taxonomy
from hybrid.taxonomy.change import diff, load_map


@click.group("taxonomy", cls=HybridGroup)
def taxonomy_group() -> None:
    """Work with category lists."""


@taxonomy_group.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@migration_option
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Count affected articles in this JSONL; else in MongoDB if a URI is set.")
@mongo_options
@field_options
@json_option()
@click.pass_obj
def taxonomy_diff(obj: HybridContext, old: str, new: str, migration: str | None,
                  data: str | None, as_json: bool, **settings: Any) -> None:
    """Added, removed, renamed, merged and split categories between two lists, and how many
    stored articles carry each affected one."""
    change = diff(load_taxonomy(old), load_taxonomy(new),
                  load_map(migration) if migration else None)
    counts = affected(change, obj.settings(**settings), data)
    emit({**change.to_json(), "impact": counts}, as_json, change.summary(counts))


@taxonomy_group.command("suggest")
@model_option()
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Articles (JSONL), labelled or not; else every article of the collection.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The proposal to write: a taxonomy file (the current list with the "
                   "changes marked).")
@click.option("--min-size", "suggest_min_articles", type=click.IntRange(min=1),
              help="Fewest articles of a proposed category (and 1% of the articles).")
@click.option("--confidence", "suggest_confidence", type=click.FloatRange(0, 1),
              help="An unlabelled article below this confidence fits no category well.")
@click.option("--dead-below", "dead_min_articles", type=click.IntRange(min=1),
              help="Propose removing categories with fewer articles than this.")
@click.option("--dead-months", type=click.IntRange(min=1),
              help="...or with no article in this many months.")
@click.option("--date-field", help="Field holding the publication date (default: 'date').")
@click.option("--llm-base-url", help="OpenAI-compatible base URL: an LLM names the proposals.")
@click.option("--llm-model", help="Model name sent to the LLM server.")
@click.option("--no-llm", is_flag=True, help="Do not ask the configured LLM for names.")
@mongo_options
@field_options
@json_option("Print the proposal as JSON.")
@click.pass_obj
def taxonomy_suggest(obj: HybridContext, model_dir: str, data: str | None, out: str,
                     no_llm: bool, as_json: bool, **settings: Any) -> None:
    """New categories (groups of articles no category fits), merges (pairs the model
    confuses out of fold) and dead categories, written as one proposal file that `taxonomy
    diff` and `retrain --taxonomy` take as it is. Nothing changes until a person accepts it."""
    # here, not above: `taxonomy diff` should not wait for the ML stack to load
    from hybrid.learn.model import HybridModel
    from hybrid.taxonomy.suggest import open_namer, read_articles, suggest, write_proposal

    config = obj.settings(**settings)
    refuse_inputs(out, [data, model_dir])
    model = HybridModel.load(model_dir, config=config)
    namer = None if no_llm else open_namer(config, model.taxonomy)
    try:
        with obj.steps(5, "suggest") as step:
            proposal = suggest(model, read_articles(config, data), config, namer, step)
    finally:
        if namer is not None:
            namer.close()
    write_proposal(proposal, out, [data, model_dir])
    emit(proposal.to_json(), as_json, proposal.summary(out))
