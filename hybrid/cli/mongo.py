"""`hybrid mongo import/export`: articles between JSONL files and a collection."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridContext, HybridGroup
from hybrid.cli.options import mongo_options
from hybrid.errors import Exit
from hybrid.mongo.store import Store
from hybrid.mongo.transfer import export, import_file
from hybrid.output import STDOUT, open_output


@click.group(cls=HybridGroup)
def mongo() -> None:
    """Move articles into and out of a MongoDB collection."""


@mongo.command("import")
@click.argument("infile", type=click.Path(exists=True, dir_okay=False))
@mongo_options
@click.option("--manual", is_flag=True,
              help="Mark the labels in INFILE as manual: runs never overwrite them, and "
                   "`train --label-source manual` learns from them.")
@click.pass_obj
def mongo_import(obj: HybridContext, infile: str, manual: bool, **settings: Any) -> None:
    """Upsert the articles of a JSONL file by _id, else the id field (plain or Extended JSON,
    as `mongo export` writes). Fields absent from the file, ours included, are kept."""
    with (Store(obj.settings(**settings)) as store,
          obj.progress(unit="article", desc="import") as bar):
        outcome = import_file(store, infile, manual, bar.update)
    for message in outcome.errors:
        click.echo(f"error: {message}", err=True)
    click.echo(f"imported {outcome.imported} articles into {store.where} "
               f"({len(outcome.errors)} failed)")
    if outcome.errors:
        click.get_current_context().exit(Exit.PARTIAL)


@mongo.command("export")
@click.option("--out", type=click.Path(dir_okay=False), help="Output file (default: stdout).")
@mongo_options
@click.pass_obj
def mongo_export(obj: HybridContext, out: str | None, **settings: Any) -> None:
    """Every document of the collection as JSON lines (relaxed Extended JSON, as mongoexport)."""
    with (Store(obj.settings(**settings)) as store,
          open_output(out or STDOUT) as fh,
          obj.progress(total=store.estimated_count(), unit="doc", desc="export") as bar):
        count = export(store, fh, bar.update)
    obj.say(f"exported {count} documents from {store.where}")
