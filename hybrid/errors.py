"""Errors that carry their exit code, so the command line prints one line and exits right.

As in Annif, they are click exceptions: a command never needs a try/except ladder, and a
library caller can still catch them by class.
"""

from __future__ import annotations

from enum import IntEnum

import click


class Exit(IntEnum):
    OK = 0
    FAILURE = 1  # unexpected: a bug, with a traceback
    USAGE = 2  # bad usage or unreadable input
    PARTIAL = 3  # finished, but some articles failed (or the failure rate passed its limit)
    MODEL = 4  # the model is corrupt, tampered with, or for another taxonomy
    BUSY = 5  # another run holds the lease
    DB = 6  # MongoDB unreachable, lost mid-run or refusing (a run's checkpoint is kept)
    ENVIRONMENT = 7  # the machine failed, not an article: the embedding cache, the disk, the
    # embedder's weights; the run stops and marks no article (its checkpoint is kept)
    INTERRUPTED = 130  # SIGINT (Ctrl-C), 128 + 2 as shells report it
    TERMINATED = 143  # SIGTERM (docker stop, systemd, Kubernetes), 128 + 15


class HybridError(click.ClickException):
    exit_code = Exit.FAILURE

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class UsageError(HybridError):
    exit_code = Exit.USAGE


class ConfigError(UsageError, ValueError):
    """A setting is unknown, of the wrong type or out of range; the message names its layer
    (file, environment variable or flag) and key."""


class PartialFailure(HybridError):
    """The job finished, but some articles failed."""

    exit_code = Exit.PARTIAL


class ModelError(HybridError):
    exit_code = Exit.MODEL


class LeaseHeld(HybridError):
    """Another run holds (or took over) the lease on this collection, or another bootstrap
    the lock on its label ledger."""

    exit_code = Exit.BUSY


class StoreError(HybridError):
    """MongoDB stayed unreachable past the retry budget, or refused; the checkpoint is kept."""

    exit_code = Exit.DB

    def format_message(self) -> str:
        return f"{self.message}. A run's checkpoint is kept: run it again to continue."


class EnvironmentFault(HybridError):
    """Something every article needs failed (the embedding cache, the disk, the embedder's
    weights): no article is to blame, so none is marked failed, and the run stops."""

    exit_code = Exit.ENVIRONMENT

    def format_message(self) -> str:
        return (f"{self.message}. No article was marked failed; fix this and run again "
                "(a run's checkpoint is kept).")


class Interrupted(HybridError):
    """The run was stopped by a signal after cleaning up: SIGINT exits 130, SIGTERM 143."""

    def __init__(self, message: str, exit_code: int = Exit.INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple:
        return type(self), (self.message, self.exit_code)
