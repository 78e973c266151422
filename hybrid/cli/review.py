"""`hybrid review export/import`: the least sure suggestions out, corrections back in."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridContext, HybridGroup
from hybrid.cli.options import (
    data_option,
    field_options,
    model_option,
    mongo_options,
    taxonomy_option,
)
from hybrid.errors import Exit, UsageError
from hybrid.labels import review as rv
from hybrid.learn.artifacts import stored_taxonomy
from hybrid.taxonomy import load_taxonomy


@click.group(cls=HybridGroup)
def review() -> None:
    """The review loop: least sure suggestions out, corrections back as manual labels."""


@review.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="review.csv (for a spreadsheet) or review.jsonl.")
@click.option("--low-confidence", is_flag=True,
              help="Only articles under the low_confidence setting (least sure first).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N articles.")
@click.option("--select", "choose", type=click.Choice(["uncertain", "diverse"]),
              help="The unlabelled articles a label helps most: those the model is least "
                   "sure of, or those that cover the corpus (needs --model; 100 unless "
                   "--limit).")
@model_option(required=False, help="With --data or --select: the model whose suggestions to "
                                   "export.")
@data_option(help="Articles (JSONL) to suggest for; else the suggestions stored in MongoDB.")
@mongo_options
@field_options
@click.pass_obj
def review_export(obj: HybridContext, out: str, low_confidence: bool, limit: int | None,
                  choose: str | None, model_dir: str | None, data: str | None,
                  **settings: Any) -> None:
    """Write the model's suggestions and scores for people to check, least sure first."""
    if (data or choose) and not model_dir:
        raise UsageError("--data and --select need --model")
    config = obj.settings(**settings)
    below = config.low_confidence if low_confidence else None
    written = rv.export(out, config, below, limit, model_dir, data, choose)
    obj.say(f"wrote {written} articles to review → {out}")


@review.command("import")
@click.argument("infile", type=click.Path(exists=True, dir_okay=False))
@model_option(required=False, help="Check categories against this model's taxonomy.")
@taxonomy_option(required=False, help="Check categories against this list instead.")
@data_option(help="Labelled JSONL to correct (with --out); else write to MongoDB.")
@click.option("--out", type=click.Path(dir_okay=False), help="Corrected JSONL to write.")
@click.option("--labels", type=click.Path(dir_okay=False),
              help="Instead: add the corrections as manual labels to this ledger "
                   "(`hybrid bootstrap --labels`).")
@mongo_options
@field_options
@click.pass_obj
def review_import(obj: HybridContext, infile: str, model_dir: str | None, taxonomy: str | None,
                  data: str | None, out: str | None, labels: str | None,
                  **settings: Any) -> None:
    """Read a reviewed file: filled-in `categories` become manual labels, which runs never
    overwrite and the next training learns from."""
    if (model_dir is None) == (taxonomy is None):
        raise UsageError("give --model or --taxonomy to check the categories against")
    if (data is None) != (out is None):
        raise UsageError("--data and --out go together")
    tax = load_taxonomy(taxonomy) if taxonomy else stored_taxonomy(model_dir, obj.config.model_key)
    written, errors, where = rv.import_corrections(infile, tax, obj.settings(**settings), data,
                                                   out, labels)
    for article_id, message in errors.items():
        click.echo(f"error: article {article_id!r}: {message}", err=True)
    click.echo(f"{written} corrections written as manual labels → {where} "
               f"({len(errors)} failed)")
    if errors:
        click.get_current_context().exit(Exit.PARTIAL)
