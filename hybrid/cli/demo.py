"""`hybrid demo`: the whole job on the bundled sample, no server needed."""

from __future__ import annotations

import click

from hybrid.cli.base import HybridCommand, HybridContext
from hybrid.demo import run_demo


@click.command(cls=HybridCommand)
@click.option("--out", default="models/demo", show_default=True,
              type=click.Path(file_okay=False), help="Where to write the demo model.")
@click.pass_obj
def demo(obj: HybridContext, out: str) -> None:
    """Train on the bundled sample, tag a few unseen articles, then run the nightly job over
    them in MongoDB ($MONGODB_URI, else an embedded server in a temporary directory)."""
    run_demo(out, obj.config, click.echo, obj.say)
