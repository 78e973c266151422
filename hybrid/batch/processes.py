"""What every worker process of a batch job needs: one BLAS thread, and to die with its
parent (a SIGKILLed `hybrid run` must not leave workers holding the model in memory)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from multiprocessing import forkserver, get_context
from multiprocessing.context import BaseContext

from threadpoolctl import threadpool_limits

_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 1.0
# what a worker needs, imported once by the fork server instead of by every worker
WORKER_MODULES = ["hybrid.learn.model"]


def fork_server() -> BaseContext:
    """Workers forked from a fork server: they start clean (not inheriting the parent's
    threads and sockets, as with spawn), but the server imported scikit-learn and the
    rest once, so a worker starts in milliseconds instead of seconds, and the parent never
    imports them at all."""
    context = get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    return context


def start_fork_server() -> None:
    """Start the fork server now, so that its imports run while the caller does other
    work, instead of when the first worker is asked for."""
    fork_server()
    forkserver.ensure_running()


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
