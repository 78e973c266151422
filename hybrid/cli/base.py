"""The command group: global options (before or after the command name), the context every
command gets, and one place where errors become exit codes.

Errors that carry an exit code (`hybrid.errors`) are click exceptions: click prints them as
one line and exits with their code. Unreadable input files exit `Exit.USAGE`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import Any

import click
from tqdm import tqdm

from hybrid.batch.processes import one_thread_per_process
from hybrid.config import Config, load_config
from hybrid.errors import UsageError
from hybrid.ingest.records import to_json

_GLOBALS = "hybrid.globals"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A global option given at any level: the last one given wins."""
    if value not in (None, False):
        ctx.find_root().meta.setdefault(_GLOBALS, {})[param.name] = value
    return value


def global_options() -> list[click.Option]:
    def option(*decls: str, **kwargs: Any) -> click.Option:
        return click.Option(decls, expose_value=False, callback=_remember, **kwargs)

    return [
        option("--config", "config_file", type=click.Path(dir_okay=False),
               help="TOML settings file (default: ./hybrid.toml if present, or "
                    "$HYBRID_CONFIG)."),
        option("--cache-dir", help="Embedding cache directory."),
        option("--embedder", help="'use-multilingual' or 'sentence-transformers:<name|path>'."),
        option("-q", "--quiet", is_flag=True, help="No progress bars or chatter (for cron)."),
        option("-v", "--verbose", is_flag=True, help="Debug logging on stderr."),
    ]


class HybridContext:
    """What every command gets: the effective configuration and ways to talk to the user."""

    def __init__(self, ctx: click.Context) -> None:
        self._globals: dict[str, Any] = ctx.find_root().meta.setdefault(_GLOBALS, {})

    @property
    def quiet(self) -> bool:
        return bool(self._globals.get("quiet"))

    @cached_property
    def config(self) -> Config:
        return load_config(self._globals.get("config_file")).with_overrides(
            cache_dir=self._globals.get("cache_dir"), embedder=self._globals.get("embedder"))

    def settings(self, **flags: Any) -> Config:
        """The configuration with this command's flags on top; an error names the flag."""
        options = {p.name: max(p.opts, key=len)
                   for p in click.get_current_context().command.params}
        return self.config.layered(flags, lambda name: options.get(name, name))

    def setup(self) -> None:
        logging.basicConfig(level=logging.DEBUG if self._globals.get("verbose") else
                            logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if self.quiet:  # cron: structured log lines replace the progress bars
            logging.getLogger("hybrid").setLevel(logging.INFO)
        if not self._globals.get("verbose"):
            # pymongo's background thread logs a traceback when it cannot kill a cursor on a
            # server that is gone; our own error line already says so
            logging.getLogger("pymongo.client").setLevel(logging.CRITICAL)
        one_thread_per_process()

    def progress(self, iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
        return tqdm(iterable, file=sys.stderr, disable=self.quiet, dynamic_ncols=True, **kwargs)

    def say(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    @contextlib.contextmanager
    def steps(self, total: int, desc: str) -> Iterator[Callable[[str], None]]:
        """A progress bar advanced by a `progress(message)` callback, for multi-step jobs."""
        with self.progress(total=total, desc=desc, unit="step") as bar:
            def step(message: str) -> None:
                bar.set_postfix_str(message)
                bar.update(1)

            yield step


def emit(data: Any, as_json: bool, text: str | None = None, err: bool = False) -> None:
    """JSON with --json (or when there is no text form), else the text; on stderr with
    `err` (when stdout carries the output itself)."""
    if as_json or text is None:
        click.echo(to_json(data, indent=None if as_json else 1), err=err)
    else:
        click.echo(text, err=err)


class HybridCommand(click.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_options())

    def invoke(self, ctx: click.Context) -> Any:
        obj = ctx.obj = ctx.find_object(HybridContext) or HybridContext(ctx)
        obj.setup()
        try:
            return super().invoke(ctx)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(str(exc)) from exc


class HybridGroup(click.Group):
    """A group whose commands take the global options. `lazy` maps a command name to
    "module:object", imported only when that command runs (or help lists it), so `hybrid
    mongo export` never loads the ML stack."""

    command_class = HybridCommand

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(global_options())
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


HybridGroup.group_class = HybridGroup

COMMANDS = {"train": "train:train", "retrain": "train:retrain",
            "bootstrap": "bootstrap:bootstrap", "predict": "tag:predict",
            "tag-file": "tag:tag_file", "eval": "evaluate:eval_command", "cv": "evaluate:cv",
            "report": "evaluate:report", "run": "run:run", "mongo": "mongo:mongo",
            "review": "review:review", "serve": "serve:serve",
            "taxonomy": "taxonomy:taxonomy_group", "llm": "llm:llm",
            "demo": "demo:demo"}


@click.group(cls=HybridGroup, context_settings={"help_option_names": ["-h", "--help"]},
             lazy={name: f"hybrid.cli.{where}" for name, where in COMMANDS.items()})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Authorized categories and keyword tags for technical articles.

    Exit codes: 0 success; 1 unexpected failure; 2 bad usage or unreadable input; 3 finished,
    but some articles failed; 4 the model is corrupt, tampered with or for another taxonomy;
    5 another run holds the lease; 6 MongoDB unreachable or refusing (run it again); 7 the
    machine failed (embedding cache, disk, embedder weights), no article marked; 130 stopped
    by SIGINT, 143 by SIGTERM (the checkpoint kept and the lease released).
    """
    ctx.obj = HybridContext(ctx)
