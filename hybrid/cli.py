"""Command line: one verb per thing a user does.

Exit codes: 0 success; 1 unexpected failure; 2 bad usage or unreadable input;
3 finished, but some articles failed (or the failure rate passed its limit);
4 the model is corrupt or does not match the taxonomy; 5 another run holds the lease.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from hybrid.article import ArticleError, load_articles, parse_article, read_jsonl
from hybrid.config import Config, load_config
from hybrid.model import HybridModel, ModelError
from hybrid.taxonomy import TaxonomyError, load_taxonomy

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL, EXIT_MODEL, EXIT_BUSY = 0, 1, 2, 3, 4, 5
log = logging.getLogger("hybrid")


class HybridContext:
    def __init__(self, config: Config, quiet: bool) -> None:
        self.config = config
        self.quiet = quiet

    def progress(self, iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
        return tqdm(iterable, file=sys.stderr, disable=self.quiet, dynamic_ncols=True, **kwargs)

    def say(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)


def handle_errors(func: Callable) -> Callable:
    """Known failures become one clear line on stderr and a documented exit code."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (TaxonomyError, ArticleError, FileNotFoundError, json.JSONDecodeError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except ModelError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_MODEL)
    return wrapper


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json or text is None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=None if as_json else 1))
    else:
        click.echo(text)


def bundled(name: str) -> Path:
    return Path(str(resources.files("hybrid") / "data" / name))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML settings file (default: ./hybrid.toml if present, or $HYBRID_CONFIG).")
@click.option("--cache-dir", help="Embedding cache directory.")
@click.option("--embedder", help="'use-multilingual' or 'sentence-transformers:<name|path>'.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or chatter (for cron).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging on stderr.")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, cache_dir: str | None,
         embedder: str | None, quiet: bool, verbose: bool) -> None:
    """Authorized categories and keyword tags for technical articles."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(config_file).with_overrides(cache_dir=cache_dir, embedder=embedder)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = HybridContext(config, quiet)


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Labelled articles, JSONL with title/description/content/categories/tags.")
@click.option("--taxonomy", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Authorized categories (JSON).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Model directory to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_obj
@handle_errors
def train(obj: HybridContext, data: str, taxonomy: str, out: str, as_json: bool) -> None:
    """Train a model from labelled articles and save it to a directory."""
    tax = load_taxonomy(taxonomy)
    articles = load_articles(data, obj.config)
    started = time.perf_counter()
    model = HybridModel.train(articles, tax, obj.config, progress=obj.say)
    model.save(out)
    manifest = model.manifest
    dropped = manifest["training"]["dropped_labels"]
    text = (f"trained on {manifest['training']['articles']} articles in "
            f"{time.perf_counter() - started:.1f}s → {out}\n"
            f"out-of-fold accuracy {manifest['metrics']['accuracy_top1']:.3f}, "
            f"macro-F1 {manifest['metrics']['macro_f1_top1']:.3f}")
    if dropped:
        text += f"\nlabels not in the taxonomy (dropped, not learned): {dropped}"
    emit(manifest, as_json, text)


def _read_one(source: str) -> dict[str, Any]:
    raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(raw)


@main.command()
@click.argument("article", default="-")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--taxonomy", type=click.Path(exists=True, dir_okay=False),
              help="Refuse the model unless it was trained for this taxonomy.")
@click.option("--explain", is_flag=True,
              help="Add probabilities, confidence, neighbours and keyword scores.")
@click.option("--json", "as_json", is_flag=True, help="Compact JSON (the output is always JSON).")
@click.pass_obj
@handle_errors
def predict(obj: HybridContext, article: str, model_dir: str, taxonomy: str | None,
            explain: bool, as_json: bool) -> None:
    """Categories and tags for one article (a JSON object in ARTICLE, or on stdin)."""
    tax = load_taxonomy(taxonomy) if taxonomy else None
    model = HybridModel.load(model_dir, tax, obj.config)
    prediction = model.predict([parse_article(_read_one(article), obj.config)],
                               explain=explain)[0]
    if prediction.error:
        click.echo(f"error: {prediction.error}", err=True)
        sys.exit(EXIT_PARTIAL)
    emit(prediction.explain() if explain else prediction.output(), True)


@main.command("tag-file")
@click.argument("infile", type=click.Path(exists=True, dir_okay=False))
@click.argument("outfile", type=click.Path(dir_okay=False))
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
@handle_errors
def tag_file(obj: HybridContext, infile: str, outfile: str, model_dir: str, workers: int,
             batch_size: int, as_json: bool) -> None:
    """Tag every article of a JSONL file, streaming, into OUTFILE.

    Each output line is {"id", "categories", "tags"}, or {"id", "error"} for an article
    that could not be read.
    """
    from hybrid.pipeline import Predictor, batches

    counts = {"articles": 0, "failed": 0}
    started = time.perf_counter()
    with (Predictor(model_dir, obj.config, workers) as predictor,
          open(outfile, "w", encoding="utf-8") as out,
          obj.progress(unit="article", desc="tag-file") as bar):
        for _, predictions in predictor.map(batches(read_jsonl(infile), batch_size)):
            for p in predictions:
                row = {"id": p.id, "error": p.error} if p.error else {"id": p.id, **p.output()}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts["articles"] += 1
                counts["failed"] += bool(p.error)
            bar.update(len(predictions))
    seconds = time.perf_counter() - started
    summary = {**counts, "seconds": round(seconds, 2),
               "articles_per_second": round(counts["articles"] / max(seconds, 1e-9), 1)}
    emit(summary, as_json, f"tagged {counts['articles']} articles ({counts['failed']} failed) "
                           f"in {seconds:.1f}s, {summary['articles_per_second']}/s → {outfile}")
    if counts["failed"]:
        sys.exit(EXIT_PARTIAL)


def _write_report(report: dict[str, Any], out: str | None, as_json: bool) -> None:
    from hybrid.evaluate import format_report

    if out:
        Path(out).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    emit(report, as_json, format_report(report))


@main.command("eval")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Labelled test articles (JSONL).")
@click.option("--baseline-data", type=click.Path(exists=True, dir_okay=False),
              help="Training JSONL for the LR baselines (without it, only the tag baseline runs).")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the report as JSON.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def eval_command(obj: HybridContext, model_dir: str, data: str, baseline_data: str | None,
                 out: str | None, as_json: bool) -> None:
    """Score a trained model on labelled articles, beside the baselines."""
    from hybrid.evaluate import evaluate

    model = HybridModel.load(model_dir, config=obj.config)
    articles = load_articles(data, obj.config)
    train = load_articles(baseline_data, obj.config) if baseline_data else None
    obj.say(f"evaluating on {len(articles)} articles")
    _write_report(evaluate(model, articles, train), out, as_json)


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--taxonomy", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--seed", default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the report as JSON.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def cv(obj: HybridContext, data: str, taxonomy: str, folds: int, seed: int, out: str | None,
       as_json: bool) -> None:
    """K-fold cross-validation of our model and the baselines, in one run."""
    from hybrid.evaluate import cross_validate

    tax = load_taxonomy(taxonomy)
    articles = load_articles(data, obj.config)
    with obj.progress(total=folds * 2, desc="cv", unit="step") as bar:
        def step(message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(1)
        report = cross_validate(articles, tax, obj.config, folds, seed, progress=step)
    _write_report(report, out, as_json)


@main.command()
@click.option("--out", default="models/demo", show_default=True,
              type=click.Path(file_okay=False), help="Where to write the demo model.")
@click.pass_obj
@handle_errors
def demo(obj: HybridContext, out: str) -> None:
    """Train on the bundled sample and tag a few unseen articles (no server needed)."""
    tax = load_taxonomy(bundled("sample_taxonomy.json"))
    articles = load_articles(bundled("sample_articles.jsonl"), obj.config)
    obj.say(f"training on {len(articles)} bundled sample articles, {len(tax)} categories")
    model = HybridModel.train(articles, tax, obj.config, progress=obj.say)
    model.save(out)
    for raw in read_jsonl(bundled("sample_unseen.jsonl")):
        article = parse_article(raw, obj.config)
        prediction = model.predict([article])[0]
        click.echo(f"\n{article.title}")
        click.echo(json.dumps(prediction.output(), ensure_ascii=False))


if __name__ == "__main__":
    main()
