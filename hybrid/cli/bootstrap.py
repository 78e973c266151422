"""`hybrid bootstrap`: day one, from unlabelled articles to a trained model."""

from __future__ import annotations

from typing import Any

import click

from hybrid.cli.base import HybridCommand, HybridContext, emit
from hybrid.cli.options import (
    field_options,
    json_option,
    llm_unchecked_option,
    mongo_options,
    out_dir_option,
    taxonomy_option,
    workers_option,
)
from hybrid.errors import UsageError
from hybrid.labels.bootstrap import bootstrap as run_bootstrap
from hybrid.labels.select import STRATEGIES
from hybrid.taxonomy import load_taxonomy


@click.command(cls=HybridCommand)
@taxonomy_option()
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Unlabelled articles (JSONL); else the MongoDB collection.")
@click.option("--labels", type=click.Path(dir_okay=False),
              help="With --data: the label ledger (JSONL) to keep and resume from.")
@mongo_options
@field_options
@out_dir_option()
@click.option("--per-category", required=True, type=click.IntRange(min=1),
              help="The budget: labels per category (so this times the categories in all).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="active", show_default=True,
              help="How articles are chosen for labelling.")
@click.option("--review-out", type=click.Path(dir_okay=False),
              help="A person is the teacher: write the round's articles to this review file "
                   "(CSV), to fill in and `hybrid review import`, then run this again.")
@click.option("--dry-run", is_flag=True, help="Print the estimated cost and stop.")
@click.option("--llm-base-url", help="The teacher: an OpenAI-compatible base URL.")
@click.option("--llm-model", help="The teacher's model name.")
@click.option("--audit", type=click.Path(dir_okay=False),
              help="Check the LLM teacher on 20 of its articles a person labels: after the "
                   "first round, this review file (CSV) is written to fill in; run again.")
@llm_unchecked_option("Go on with a teacher estimated worse than the zero-shot model.")
@workers_option
@json_option("Print the rounds as JSON.")
@click.pass_obj
def bootstrap(obj: HybridContext, taxonomy: str, data: str | None, labels: str | None,
              out: str, per_category: int, strategy: str, review_out: str | None,
              dry_run: bool, audit: str | None, as_json: bool, **settings: Any) -> None:
    """Label a few well-chosen articles with a teacher (an LLM, or a person), then train.

    Rounds at 2, 5, 10, 20, 50, 100 labels per category, up to --per-category: the first
    covers every category and the corpus, later ones what the model is least sure of. The
    cost is printed before any call. Killed or rerun, it resumes from its labels and pays
    nothing twice. An LLM teacher is checked after the first round, or its first 40 labels
    (its agreement with the zero-shot model beyond chance, or --audit): one estimated worse
    than the zero-shot model stops there, and the zero-shot model is kept.
    """
    if (data is None) != (labels is None):
        raise UsageError("--data and --labels go together (else the MongoDB collection)")
    if audit and review_out:
        raise UsageError("--audit checks an LLM teacher; with --review-out a person teaches")
    outcome = run_bootstrap(load_taxonomy(taxonomy), obj.settings(**settings), out,
                            per_category, data, labels, strategy, review_out, dry_run, obj.say,
                            audit)
    emit(outcome.as_dict(), as_json, outcome.text(out, review_out))
