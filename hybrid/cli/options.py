"""Options shared by several commands, declared once (as Annif's cli_util does)."""

from __future__ import annotations

from collections.abc import Callable

import click

Decorator = Callable[[Callable], Callable]


def _stack(*decorators: Decorator) -> Decorator:
    def apply(func: Callable) -> Callable:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func
    return apply


def model_option(required: bool = True, help: str = "Model directory (from `hybrid train`)."
                 ) -> Decorator:
    return click.option("--model", "model_dir", required=required, help=help,
                        type=click.Path(exists=True, file_okay=False))


def data_option(required: bool = False, help: str = "Labelled articles (JSONL)."
                ) -> Decorator:
    return click.option("--data", required=required, help=help,
                        type=click.Path(exists=True, dir_okay=False))


def taxonomy_option(required: bool = True, help: str = "Authorized categories (JSON)."
                    ) -> Decorator:
    return click.option("--taxonomy", required=required, help=help,
                        type=click.Path(exists=True, dir_okay=False))


def json_option(help: str = "Print the result as JSON.") -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help)


def out_dir_option(help: str = "Model directory to write.") -> Decorator:
    return click.option("--out", required=True, type=click.Path(file_okay=False), help=help)


def folds_option() -> Decorator:
    return click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))


workers_option = click.option("--workers", type=click.IntRange(min=1),
                              help="Worker processes (default: the `workers` setting, 1).")

engine_options = _stack(
    click.option("--engine", type=click.Choice(["local", "ray"]),
                 help="'local' (default): this machine, --workers processes; 'ray': Ray "
                      "workers, one per CPU of the cluster unless --workers (hybrid[ray])."),
    click.option("--ray-address",
                 help="Ray cluster: 'auto' or HOST:PORT (default: a Ray instance on this "
                      "machine)."))

label_source_option = click.option(
    "--label-source", metavar="manual|llm|manual,llm",
    help="Instead of --data, the MongoDB articles with manual labels, a teacher LLM's "
         "(`hybrid bootstrap`), or both (manual ones win).")

migration_option = click.option(
    "--migration", type=click.Path(exists=True, dir_okay=False),
    help="Migration map (JSON: rename, merge, split, remove); else from aliases.")

mongo_options = _stack(
    click.option("--mongo-uri", help="Connection URI; prefer the MONGODB_URI environment "
                                     "variable, which `ps` does not show."),
    click.option("--db", "mongo_db", help="Database."),
    click.option("--collection", "mongo_collection", help="Articles collection."))


def _field(name: str) -> Decorator:
    return click.option(f"--{name}-field", f"{name}_field",
                        help=f"Field holding the {name} (default: '{name}').")


field_options = _stack(
    *(_field(name) for name in ("title", "description", "content", "categories", "tags")),
    click.option("--results-collection",
                 help="Keep labels in this collection (by article _id), not in the articles."))


def llm_unchecked_option(help: str = "Use the LLM as a fallback without a passing `hybrid "
                                     "llm check` (the report says so).") -> Decorator:
    return click.option("--llm-unchecked", is_flag=True, default=None, help=help)


llm_options = _stack(
    click.option("--llm-mode", type=click.Choice(["off", "fallback", "review-only"]),
                 help="Send low-confidence articles to an LLM (default: the llm_mode "
                      "setting)."),
    click.option("--llm-base-url",
                 help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    click.option("--llm-model", help="Model name sent to the LLM server."),
    click.option("--llm-threshold", type=float,
                 help="Confidence under which an article goes out (review-only, or "
                      "fallback with --llm-unchecked; a checked fallback uses its check's)."),
    llm_unchecked_option())



def labelled_options(help: str = "Labelled articles (JSONL).") -> Decorator:
    """Where labelled articles come from: a file, or a collection's manual labels."""
    return _stack(data_option(help=help), label_source_option, mongo_options, field_options)
