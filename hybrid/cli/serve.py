"""`hybrid serve`: suggestions over HTTP, and a page for people (docs/serve.md)."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridCommand, HybridContext
from hybrid.cli.options import (
    field_options,
    llm_options,
    model_option,
    mongo_options,
    taxonomy_option,
)


@click.command(cls=HybridCommand)
@model_option()
@taxonomy_option(required=False, help="Serve, and reload, only models trained for this list "
                                      "(default: the list of the model served first).")
@click.option("--host", "serve_host", help="Address to listen on (default: 127.0.0.1; "
                                           "0.0.0.0 only behind a proxy or firewall).")
@click.option("--port", "serve_port", type=click.IntRange(0, 65535),
              help="Port (default: 8000; 0 picks a free one).")
@click.option("--workers", "serve_workers", type=click.IntRange(min=1),
              help="Model worker processes (default: the serve_workers setting, 1).")
@click.option("--api-key", help="Bearer key for feedback, review and admin; prefer "
                                "HYBRID_API_KEY, which `ps` does not show.")
@click.option("--labels", type=click.Path(dir_okay=False),
              help="Store feedback in this label ledger (JSONL, as `bootstrap --labels`); "
                   "else on the articles in MongoDB.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Articles (JSONL) for the review queue when there is no collection.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@mongo_options
@field_options
@llm_options
@click.pass_obj
def serve(obj: HybridContext, model_dir: str, taxonomy: str | None, api_key: str | None,
          labels: str | None, data: str | None, access_log: bool, **settings: Any) -> None:
    """Serve suggestions over HTTP while authors write: POST /v1/suggest and
    /v1/suggest-batch, people's corrections at /v1/feedback, a page for people at /, the
    API at /docs. SIGHUP (or POST /v1/admin/reload) loads a new model without downtime;
    SIGTERM drains the requests in flight, then stops."""
    from hybrid.serve.server import serve as run_server

    config = obj.settings(**settings)
    api_key = api_key or config.api_key
    if not api_key:
        obj.say("note: no HYBRID_API_KEY: feedback, the review queue and reloads over HTTP "
                "are off (SIGHUP still reloads)")
    run_server(config, model_dir, taxonomy, labels, data, api_key,
               lambda line: click.echo(line, err=True), access_log)
