"""Command line: one verb per thing a user does.

Exit codes: 0 success; 1 unexpected failure; 2 bad usage or unreadable input;
3 finished, but some articles failed (or the failure rate passed its limit);
4 the model is corrupt or does not match the taxonomy; 5 another run holds the lease;
6 MongoDB unreachable, lost mid-run or refusing (a run's checkpoint is kept: run it again).
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

from hybrid.article import ArticleError, article_id_of, load_articles, parse_article, read_jsonl
from hybrid.config import Config, load_config
from hybrid.model import HybridModel, ModelError
from hybrid.pipeline import one_thread_per_process
from hybrid.store import LeaseHeld, StoreError, scrub
from hybrid.taxonomy import TaxonomyError, load_taxonomy

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL, EXIT_MODEL, EXIT_BUSY = 0, 1, 2, 3, 4, 5
EXIT_DB = 6
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


def mongo_options(func: Callable) -> Callable:
    """Where the articles are; each flag overrides the setting of the same name."""
    func = click.option("--collection", "mongo_collection", help="Articles collection.")(func)
    func = click.option("--db", "mongo_db", help="Database.")(func)
    return click.option("--mongo-uri", help="Connection URI; prefer the MONGODB_URI environment "
                        "variable, which `ps` does not show.")(func)


def llm_options(func: Callable) -> Callable:
    """The optional LLM pass; each flag overrides the setting of the same name."""
    func = click.option("--llm-threshold", type=float,
                        help="Confidence under which an article goes out.")(func)
    func = click.option("--llm-model", help="Model name sent to the LLM server.")(func)
    func = click.option("--llm-base-url",
                        help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")(func)
    return click.option("--llm-mode", type=click.Choice(["off", "fallback", "review-only"]),
                        help="Send low-confidence articles to an LLM (default: the llm_mode "
                             "setting).")(func)


workers_option = click.option("--workers", type=click.IntRange(min=1),
                              help="Training processes (default: the `workers` setting, 1).")


def field_options(func: Callable) -> Callable:
    """Field names in the articles, and where labels go."""
    func = click.option("--results-collection",
                        help="Keep labels in this collection (by article _id), not in the "
                             "articles.")(func)
    for name in reversed(["title", "description", "content", "categories", "tags"]):
        func = click.option(f"--{name}-field", f"{name}_field",
                            help=f"Field holding the {name} (default: '{name}').")(func)
    return func


def mongo_errors(func: Callable) -> Callable:
    """A held lease exits 5; MongoDB failures exit 6 with one line that never shows a password."""
    @wraps(func)
    def wrapper(obj: HybridContext, *args: Any, **kwargs: Any) -> Any:
        from pymongo.errors import PyMongoError

        try:
            return func(obj, *args, **kwargs)
        except LeaseHeld as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BUSY)
        except StoreError as exc:
            click.echo(f"error: {exc}. A run's checkpoint is kept: run it again to continue.",
                       err=True)
            sys.exit(EXIT_DB)
        except PyMongoError as exc:
            uri = kwargs.get("mongo_uri") or obj.config.mongo_uri
            click.echo(scrub(f"error: MongoDB: {type(exc).__name__}: {exc}", uri)[:1000],
                       err=True)
            sys.exit(EXIT_DB)
    return wrapper


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
    one_thread_per_process()
    ctx.obj = HybridContext(config, quiet)


@main.command()
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled articles, JSONL with title/description/content/categories/tags.")
@click.option("--label-source", type=click.Choice(["manual"]),
              help="Instead of --data, the MongoDB articles with manual labels.")
@mongo_options
@field_options
@click.option("--taxonomy", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Authorized categories (JSON).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Model directory to write.")
@workers_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_obj
@handle_errors
@mongo_errors
def train(obj: HybridContext, data: str | None, label_source: str | None, taxonomy: str,
          out: str, as_json: bool, **settings: Any) -> None:
    """Train a model from labelled articles and save it to a directory."""
    if (data is None) == (label_source is None):
        raise click.UsageError("give either --data FILE or --label-source manual")
    config = obj.config.with_overrides(**settings)
    tax = load_taxonomy(taxonomy)
    articles = load_articles(data, config) if data else _manual_articles(config)
    started = time.perf_counter()
    model = HybridModel.train(articles, tax, config, progress=obj.say)
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


def _manual_articles(config: Config) -> list[Any]:
    from hybrid.store import Store

    with Store(config) as store:
        records = store.manual_records()
    if not records:
        raise click.UsageError(f"no articles with manual labels in {store.where}")
    return [parse_article(record, config) for record in records]


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
@llm_options
@click.pass_obj
@handle_errors
def tag_file(obj: HybridContext, infile: str, outfile: str, model_dir: str, workers: int,
             batch_size: int, as_json: bool, **llm: Any) -> None:
    """Tag every article of a JSONL file, streaming, into OUTFILE.

    Each output line is {"id", "categories", "tags"}, or {"id", "error"} for an article
    that could not be read. With an LLM, lines it touched add "source" and "llm".
    """
    from hybrid.pipeline import Predictor, batches

    config = obj.config.with_overrides(**llm)
    counts = {"articles": 0, "failed": 0}
    started = time.perf_counter()
    with (Predictor(model_dir, config, workers) as predictor,
          _llm_refiner(config, model_dir) as refiner,
          open(outfile, "w", encoding="utf-8") as out,
          obj.progress(unit="article", desc="tag-file") as bar):
        for records, predictions in predictor.map(batches(read_jsonl(infile), batch_size)):
            predictions = _refine_batch(refiner, records, predictions, config)
            for p in predictions:
                row = {"id": p.id, "error": p.error} if p.error else {"id": p.id, **p.output()}
                if p.llm:
                    row.update(source=p.source, llm=p.llm)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                counts["articles"] += 1
                counts["failed"] += bool(p.error)
            bar.update(len(predictions))
    seconds = time.perf_counter() - started
    summary = {**counts, "seconds": round(seconds, 2),
               "articles_per_second": round(counts["articles"] / max(seconds, 1e-9), 1)}
    text = (f"tagged {counts['articles']} articles ({counts['failed']} failed) "
            f"in {seconds:.1f}s, {summary['articles_per_second']}/s → {outfile}")
    if refiner is not None:
        summary["llm"] = stats = refiner.stats.as_dict()
        text += "\n" + _llm_summary(stats)
    emit(summary, as_json, text)
    if counts["failed"]:
        sys.exit(EXIT_PARTIAL)


def _llm_refiner(config: Config, model_dir: str) -> Any:
    """An `LLMRefiner` (a context manager) when the LLM is on, else a null context."""
    import contextlib

    from hybrid.llm import LLMRefiner

    if config.llm_mode == "off":
        return contextlib.nullcontext()
    model = HybridModel.load(model_dir, config=config)  # for few-shot neighbours
    try:
        return LLMRefiner(config, model.taxonomy, model)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _llm_summary(stats: dict[str, Any]) -> str:
    return (f"LLM ({stats['mode']}): {stats['selected']} low-confidence articles, "
            f"{stats['calls']} calls, {stats['prompt_tokens'] + stats['completion_tokens']} "
            f"tokens, est. cost {stats['cost']:.4f}, {stats['cache_hits']} cached, "
            f"{stats['applied']} applied, {stats['blocked']} unauthorized blocked, "
            f"{stats['errors']} errors")


def _refine_batch(refiner: Any, records: list[Any], predictions: list[Any],
                  config: Config) -> list[Any]:
    """Low-confidence predictions of one batch through the LLM; the rest unchanged."""
    if refiner is None:
        return predictions
    wanted = [i for i, p in enumerate(predictions) if refiner.wants(p)]
    items = [(parse_article(records[i], config), None, predictions[i]) for i in wanted]
    for i, refined in zip(wanted, refiner.refine(items), strict=True):
        predictions[i] = refined
    return predictions


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
    """Train on the bundled sample, tag a few unseen articles, then run the nightly job over
    them in MongoDB ($MONGODB_URI, else an embedded server in a temporary directory)."""
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
    from hybrid.demo import mongo_demo

    mongo_demo(out, obj.config, click.echo, obj.say)


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@mongo_options
@field_options
@click.option("--all", "retag_all", is_flag=True,
              help="Re-tag every article but manual ones; a rerun after a crash resumes.")
@click.option("--retag", type=click.Choice(["affected", "all"]),
              help="After `hybrid retrain`: 'affected' re-tags the articles holding a category "
                   "the model's list no longer has, and moves manual labels to the new names; "
                   "'all' is --all.")
@click.option("--since", type=click.DateTime(),
              help="Also re-tag articles not tagged since DATE (local time).")
@click.option("--limit", type=click.IntRange(min=1), help="Tag at most N articles.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes.")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Articles per model batch, bulk write and checkpoint (default: 200).")
@click.option("--dry-run", is_flag=True,
              help="Write nothing; print a JSON line per article whose labels would change.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@llm_options
@click.pass_obj
@handle_errors
@mongo_errors
def run(obj: HybridContext, model_dir: str, retag_all: bool, retag: str | None, since: Any,
        limit: int | None, workers: int, dry_run: bool, as_json: bool, **settings: Any) -> None:
    """Tag the new and changed articles of a MongoDB collection (the nightly job).

    Never writes an article whose labels are manual (hybrid.source "manual" or
    hybrid.locked true), nor any field but the categories, tags and hybrid fields.
    Resumes after a crash; the report goes to the hybrid_runs collection. With --quiet
    (cron) a structured log line per batch replaces the progress bar.
    """
    from datetime import UTC

    from hybrid.nightly import Selection
    from hybrid.nightly import run as run_job
    from hybrid.store import Store, now

    if sum(map(bool, (retag_all, since, retag))) > 1:
        raise click.UsageError("--all, --retag and --since exclude each other")
    retag_all = retag_all or retag == "all"
    config = obj.config.with_overrides(**settings)
    if retag == "affected":
        categories = HybridModel.read_manifest(model_dir)["categories"]
        selection = Selection("affected", limit=limit, authorized=frozenset(categories))
    elif retag_all:
        selection = Selection("all", now(), limit)
    elif since:
        selection = Selection("since", since.astimezone(UTC), limit)
    else:
        selection = Selection(limit=limit)
    if obj.quiet:
        logging.getLogger("hybrid").setLevel(logging.INFO)
    with Store(config) as store, obj.progress(total=store.estimated_count(), unit="article",
                                              desc="run") as bar:
        if retag == "affected":
            _relabel_manual(obj, store, model_dir, dry_run)
        with _llm_refiner(config, model_dir) as refiner:
            llm = {} if refiner is None else {
                "refine": lambda pairs: refiner.refine([(a, None, p) for a, p in pairs]),
                "llm_stats": refiner.stats.as_dict}
            report = run_job(store, model_dir, selection, workers=workers, dry_run=dry_run,
                             progress=bar.update, show=click.echo, **llm)
    text = report.summary() + (f"\n{_llm_summary(report.llm)}" if report.llm else "")
    emit(json.loads(json.dumps(report.document(), default=str)), as_json, text)
    if report.failure_rate > config.max_failure_rate:
        click.echo(f"error: {report.failure_rate:.1%} of articles failed, over the limit of "
                   f"{config.max_failure_rate:.1%} (max_failure_rate)", err=True)
        sys.exit(EXIT_PARTIAL)


def _relabel_manual(obj: HybridContext, store: Any, model_dir: str, dry_run: bool) -> None:
    """Manual labels under names the retrained model's list renamed or merged move with them."""
    from hybrid.migrate import Migration, relabel_manual

    migration = Migration.from_manifest(HybridModel.read_manifest(model_dir))
    if migration is not None:
        moved = relabel_manual(store, migration, dry_run)
        obj.say(f"{'would move' if dry_run else 'moved'} the manual labels of {moved} articles "
                "to the new category names")


@main.group()
def mongo() -> None:
    """Move articles into and out of a MongoDB collection."""


@mongo.command("import")
@click.argument("infile", type=click.Path(exists=True, dir_okay=False))
@mongo_options
@click.option("--manual", is_flag=True,
              help="Mark the labels in INFILE as manual: runs never overwrite them, and "
                   "`train --label-source manual` learns from them.")
@click.pass_obj
@handle_errors
@mongo_errors
def mongo_import(obj: HybridContext, infile: str, manual: bool, **settings: Any) -> None:
    """Upsert the articles of a JSONL file by _id, else the id field (plain or Extended JSON,
    as `mongo export` writes). Fields absent from the file, ours included, are kept."""
    from hybrid.pipeline import batches
    from hybrid.store import Store, from_extended_json

    config = obj.config.with_overrides(**settings)
    imported, failed = 0, 0
    with Store(config) as store, obj.progress(unit="article", desc="import") as bar:
        for batch in batches(read_jsonl(infile), config.batch_size):
            records = [from_extended_json(raw) for raw in batch if isinstance(raw, dict)]
            errors = [str(raw) if isinstance(raw, ArticleError) else f"not an object: {raw!r:.80}"
                      for raw in batch if not isinstance(raw, dict)]
            errors += [f"article {article_id_of(records[i], config.id_field)!r}: {message}"
                       for i, message in store.import_records(records, manual).items()]
            for message in errors:
                click.echo(f"error: {message}", err=True)
            imported += len(batch) - len(errors)
            failed += len(errors)
            bar.update(len(batch))
    click.echo(f"imported {imported} articles into {store.where} ({failed} failed)")
    if failed:
        sys.exit(EXIT_PARTIAL)


@mongo.command("export")
@click.option("--out", type=click.Path(dir_okay=False), help="Output file (default: stdout).")
@mongo_options
@click.pass_obj
@handle_errors
@mongo_errors
def mongo_export(obj: HybridContext, out: str | None, **settings: Any) -> None:
    """Every document of the collection as JSON lines (relaxed Extended JSON, as mongoexport)."""
    from hybrid.store import Store

    with (Store(obj.config.with_overrides(**settings)) as store,
          click.open_file(out or "-", "w", encoding="utf-8") as fh,
          obj.progress(total=store.estimated_count(), unit="doc", desc="export") as bar):
        count = store.export(fh, bar.update)
    obj.say(f"exported {count} documents from {store.where}")


def _labelled(data: str | None, label_source: str | None, config: Config) -> list[Any]:
    """Labelled articles from a JSONL file or, with --label-source manual, from MongoDB."""
    if (data is None) == (label_source is None):
        raise click.UsageError("give either --data FILE or --label-source manual")
    return load_articles(data, config) if data else _manual_articles(config)


def _needs_report_extra() -> None:
    try:
        import cleanlab  # noqa: F401
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        raise click.UsageError(f"this command needs: pip install 'hybrid[report]' ({exc})"
                               ) from exc


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled articles (JSONL). Articles the model trained on are predicted out "
                   "of fold; others by the model itself.")
@click.option("--label-source", type=click.Choice(["manual"]),
              help="Instead of --data, the MongoDB articles with manual labels.")
@mongo_options
@field_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--suspects", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many likely mislabelled articles to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and suspects as JSON.")
@click.pass_obj
@handle_errors
@mongo_errors
def report(obj: HybridContext, model_dir: str, data: str | None, label_source: str | None,
           out: str, folds: int, suspects: int, as_json: bool, **settings: Any) -> None:
    """Label quality as one static HTML page: per-category scores, confusion, confidence and
    calibration, coverage against threshold, tags, and likely mislabelled articles."""
    _needs_report_extra()
    from hybrid.quality import assess, predictions_for
    from hybrid.report import write_report

    config = obj.config.with_overrides(**settings)
    model = HybridModel.load(model_dir, config=config)
    articles = _labelled(data, label_source, config)
    with obj.progress(total=folds * 2, desc="report", unit="step") as bar:
        def step(message: str) -> None:
            bar.set_postfix_str(message)
            bar.update(1)
        quality = assess(predictions_for(model, articles, config, folds, progress=step),
                         suspects)
    write_report(quality, out, f"Label quality: {Path(model_dir).name} on "
                 f"{Path(data).name if data else 'manual labels'}", config.low_confidence)
    found = quality.suspects
    emit({"summary": quality.summary, "suspects": found.to_dict(orient="records")}, as_json,
         f"{quality.summary['articles']} articles, predictions {quality.how}: accuracy "
         f"{quality.summary['accuracy_top1']:.3f}, macro-F1 {quality.summary['macro_f1']:.3f}; "
         f"{len(found)} likely mislabelled → {out}")


@main.command()
@click.option("--taxonomy", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The new category list (JSON).")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The model trained for the old list.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Model directory to write.")
@click.option("--migration", type=click.Path(exists=True, dir_okay=False),
              help="Migration map (JSON: rename, merge, split, remove); else from aliases.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled articles (JSONL), labels under the old or the new list.")
@click.option("--label-source", type=click.Choice(["manual"]),
              help="Instead of --data, the MongoDB articles with manual labels.")
@mongo_options
@field_options
@workers_option
@click.option("--json", "as_json", is_flag=True, help="Print the change and metrics as JSON.")
@click.pass_obj
@handle_errors
@mongo_errors
def retrain(obj: HybridContext, taxonomy: str, model_dir: str, out: str, migration: str | None,
            data: str | None, label_source: str | None, as_json: bool,
            **settings: Any) -> None:
    """Retrain for a changed category list: labels move through the migration, embeddings
    come from the cache, new categories start from their descriptions."""
    from hybrid.migrate import format_comparison, load_map
    from hybrid.migrate import retrain as run_retrain

    config = obj.config.with_overrides(**settings)
    tax = load_taxonomy(taxonomy)
    explicit = load_map(migration) if migration else None
    done = run_retrain(model_dir, _labelled(data, label_source, config), tax, config,
                       explicit, progress=obj.say)
    done.model.save(out)
    old = (f"{done.old_seconds:.1f}s" if done.old_seconds is not None
           else "not recorded")
    emit({"migration": done.migration.to_json(), "relabelled": done.relabelled,
          "seconds": round(done.seconds, 2), "old_training_seconds": done.old_seconds,
          "cache": {"hits": done.cache_hits, "misses": done.cache_misses},
          "metrics": done.comparison}, as_json,
         f"{done.migration.summary()}\n\n{done.relabelled} articles relabelled; retrained in "
         f"{done.seconds:.1f}s (the old model: {old}); embedding cache: "
         f"{done.cache_hits} hits, {done.cache_misses} misses → {out}\n\n"
         f"{format_comparison(done.comparison)}")


@main.group("taxonomy")
def taxonomy_group() -> None:
    """Work with category lists."""


@taxonomy_group.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option("--migration", type=click.Path(exists=True, dir_okay=False),
              help="Migration map (JSON: rename, merge, split, remove); else from aliases.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Count affected articles in this JSONL; else in MongoDB if a URI is set.")
@mongo_options
@field_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
@mongo_errors
def taxonomy_diff(obj: HybridContext, old: str, new: str, migration: str | None,
                  data: str | None, as_json: bool, **settings: Any) -> None:
    """Added, removed, renamed, merged and split categories between two lists, and how many
    stored articles carry each affected one."""
    from hybrid.migrate import diff, impact, load_map, stored_impact

    config = obj.config.with_overrides(**settings)
    change = diff(load_taxonomy(old), load_taxonomy(new), load_map(migration) if migration
                  else None)
    counts = None
    if data:
        counts = impact(change, (r.get(config.categories_field) or [] for r in read_jsonl(data)
                                 if isinstance(r, dict)))
    elif config.mongo_uri:
        from hybrid.store import Store

        with Store(config) as store:
            counts = stored_impact(store, change)
    emit({**change.to_json(), "impact": counts}, as_json, change.summary(counts))


@main.group()
def review() -> None:
    """The review loop: least sure suggestions out, corrections back as manual labels."""


@review.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="review.csv (for a spreadsheet) or review.jsonl.")
@click.option("--low-confidence", is_flag=True,
              help="Only articles under the low_confidence setting (least sure first).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N articles.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
              help="With --data: the model whose suggestions to export.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Articles (JSONL) to suggest for; else the suggestions stored in MongoDB.")
@mongo_options
@field_options
@click.pass_obj
@handle_errors
@mongo_errors
def review_export(obj: HybridContext, out: str, low_confidence: bool, limit: int | None,
                  model_dir: str | None, data: str | None, **settings: Any) -> None:
    """Write the model's suggestions and scores for people to check, least sure first."""
    from hybrid import review as rv

    config = obj.config.with_overrides(**settings)
    below = config.low_confidence if low_confidence else None
    if data:
        if not model_dir:
            raise click.UsageError("--data needs --model")
        rows = rv.rows_from_file(HybridModel.load(model_dir, config=config), data, config)
        rows = rv.select(rows, below, limit)
    else:
        from hybrid.store import Store

        with Store(config) as store:
            rows = rv.rows_from_store(store, below, limit)
    rv.write_rows(rows, out)
    obj.say(f"wrote {len(rows)} articles to review → {out}")


@review.command("import")
@click.argument("infile", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
              help="Check categories against this model's taxonomy.")
@click.option("--taxonomy", type=click.Path(exists=True, dir_okay=False),
              help="Check categories against this list instead.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Labelled JSONL to correct (with --out); else write to MongoDB.")
@click.option("--out", type=click.Path(dir_okay=False), help="Corrected JSONL to write.")
@mongo_options
@field_options
@click.pass_obj
@handle_errors
@mongo_errors
def review_import(obj: HybridContext, infile: str, model_dir: str | None, taxonomy: str | None,
                  data: str | None, out: str | None, **settings: Any) -> None:
    """Read a reviewed file: filled-in `categories` become manual labels, which runs never
    overwrite and the next training learns from."""
    from hybrid import review as rv

    if (model_dir is None) == (taxonomy is None):
        raise click.UsageError("give --model or --taxonomy to check the categories against")
    if (data is None) != (out is None):
        raise click.UsageError("--data and --out go together")
    config = obj.config.with_overrides(**settings)
    tax = load_taxonomy(taxonomy) if taxonomy else HybridModel.load(model_dir, config=config
                                                                     ).taxonomy
    corrections, errors = rv.read_corrections(infile, tax)
    if data:
        records, missing = rv.apply_to_records(
            (r for r in read_jsonl(data) if isinstance(r, dict)), corrections, config)
        with open(out, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        errors.update({m: f"not in {data}" for m in missing})
        where = out
    else:
        from hybrid.store import Store

        with Store(config) as store:
            errors.update(rv.write_to_store(store, corrections))
            where = store.where
    for article_id, message in errors.items():
        click.echo(f"error: article {article_id!r}: {message}", err=True)
    click.echo(f"{len(corrections) - len(errors)} corrections written as manual labels → "
               f"{where} ({len(errors)} failed)")
    if errors:
        sys.exit(EXIT_PARTIAL)


if __name__ == "__main__":
    main()
