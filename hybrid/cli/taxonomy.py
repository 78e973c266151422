"""`hybrid taxonomy diff`: what a new category list changes, and for how many articles."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridContext, HybridGroup, emit
from hybrid.cli.options import field_options, json_option, migration_option, mongo_options
from hybrid.labels.impact import affected
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
