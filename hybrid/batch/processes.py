"""What every worker process of a batch job needs: one BLAS thread, and to die with its
parent (a SIGKILLed `hybrid run` must not leave workers holding the model in memory). And
what the job's own process needs: SIGTERM stops it as cleanly as SIGINT does."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing import forkserver, get_context
from multiprocessing.context import BaseContext
from pathlib import Path

from threadpoolctl import threadpool_limits

_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 1.0
# what a worker needs, imported once by the fork server instead of by every worker; with
# the default embedder, its weights too (hybrid/batch/preload.py)
WORKER_MODULES = ["hybrid.learn.model"]
WITH_WEIGHTS = ["hybrid.batch.preload"]


def fork_server(embedder: str | None = None) -> BaseContext:
    """Workers forked from a fork server: they start clean (not inheriting the parent's
    threads and sockets, as with spawn), but the server imported scikit-learn and the
    rest once, so a worker starts in milliseconds instead of seconds, and the parent never
    imports them at all. `embedder`: the model's; with the default one, the server also
    loads its weights (once the server runs, a worker of another model loads its own)."""
    from hybrid.embed.base import DEFAULT_EMBEDDER  # here: this module is the CLI's too

    context = get_context("forkserver")
    context.set_forkserver_preload(WITH_WEIGHTS if embedder == DEFAULT_EMBEDDER
                                   else WORKER_MODULES)
    return context


def start_fork_server(model_dir: str | Path) -> None:
    """Start the fork server for the model in `model_dir` now, so that its imports run
    while the caller does other work, instead of when the first worker is asked for. The
    model is not verified yet: its manifest only says which embedder to preload."""
    from hybrid.errors import ModelError
    from hybrid.learn.artifacts import read_manifest

    try:
        embedder = read_manifest(model_dir)["embedder"]
    except ModelError:  # said by the verification that comes next
        embedder = None
    fork_server(embedder)
    forkserver.ensure_running()


def start_pool_early(engine: str, workers: int | None, model_dir: str | Path) -> None:
    """What a command with a pool of workers (`tag-file`, `run`) calls first, before it
    imports its own code: with the local engine and several workers, the fork server's
    imports (~1.75 CPU-seconds) then run beside the command's, on the other core."""
    if engine == "local" and (workers or 1) > 1:
        start_fork_server(model_dir)


def one_thread_per_process() -> None:
    """Parallelism comes from processes. BLAS and OpenMP threads on top of them fight over
    the cores: KeyBERT's small matrix products and the tag ranker ran several times slower
    with their default thread pools on a 2-core machine."""
    threadpool_limits(limits=1)


def die_with_parent(parent: int) -> None:
    """Exit when process `parent` does. On Linux the kernel sends SIGKILL when the process
    that forked us dies (PR_SET_PDEATHSIG): `parent` itself, or the fork server, which exits
    when `parent` does. Everywhere a watcher thread also notices within a second."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if not alive(parent):  # it died before we could ask
        os._exit(1)

    def watch() -> None:
        while alive(parent):
            time.sleep(_WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or its number reused by another user
        return False
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises `KeyboardInterrupt` (and caught where it is): the
    job stops at once, and its cleanup (report, checkpoint, lease) runs on the way out. A
    `BaseException`, so no `except Exception` on the way takes it for an article's error."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM (docker stop, systemd, Kubernetes) raises `Terminated` in
    the main thread. Further SIGTERMs are ignored while the job cleans up; SIGKILL is the
    way to stop it at once. Elsewhere than the main thread, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def keeping_sigterm_handler() -> Iterator[None]:
    """After the block, the SIGTERM handler it began with (`ray.init` installs its own,
    which exits at once, leaving the run marked running and its lease held)."""
    handler = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or handler is None:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, handler)
