"""MongoDB servers for tests: SecantusDB in-process or as a subprocess.

Tests talk to the server with real pymongo over TCP. When the environment
variable ``MONGODB_TEST_URI`` is set, :func:`mongo_uri` yields it instead of
starting SecantusDB, so the same tests run against a real mongod (use a
unique database name per test in that case: the server is shared).

:func:`start_server_process` runs SecantusDB's own daemon
(``python -m secantus``, the ``secantusd-py`` entry point) as a child process
so a test can kill it (:func:`kill_server_process`) or stop it
(:func:`stop_server_process`) mid-run, then restart it on the same storage
path and port with its data intact.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ENV_TEST_URI = "MONGODB_TEST_URI"
_LISTENING = re.compile(r"secantus listening on (\S+):(\d+)")


@contextlib.contextmanager
def mongo_uri(tmp_path: Path) -> Iterator[str]:
    """Yield ``$MONGODB_TEST_URI`` if set, else an in-process SecantusDB URI.

    The SecantusDB server stores its data under ``tmp_path / "secantus"``,
    listens on a free port and is stopped when the context exits.
    """
    env_uri = os.environ.get(ENV_TEST_URI)
    if env_uri:
        yield env_uri
        return

    from secantus import SecantusDBServer

    storage = Path(tmp_path) / "secantus"
    storage.mkdir(parents=True, exist_ok=True)
    server = SecantusDBServer(storage_path=str(storage))
    server.start()
    try:
        yield server.uri
    finally:
        _wake_accept_loop(server)
        server.stop()


def _wake_accept_loop(server: object) -> None:
    """Unblock SecantusDB's accept thread so ``stop()`` is fast.

    ``SecantusDBServer.stop()`` closes the listening socket, which does not
    wake a thread blocked in ``accept()`` on Linux, so it waits out a 2 s
    join timeout. Shutting the socket down first makes ``accept()`` fail at
    once. Best effort: relies on a private attribute of secantusdb 0.7.
    """
    sock = getattr(server, "_socket", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def start_server_process(
    storage_path: Path | str,
    port: int | None = None,
    *,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start SecantusDB as a child process; return ``(process, uri)``.

    ``port=None`` lets the server pick a free port (read back from its log).
    Pass the same ``storage_path`` and ``port`` again to restart it after
    :func:`stop_server_process` or :func:`kill_server_process`: the data
    (WiredTiger, journaled) survives both. The server log goes to
    ``<storage_path>.log``; an empty ``<storage_path>.toml`` config is passed
    so no ``secantusd.toml`` from the cwd, ``~`` or ``/etc`` is picked up.

    Durability on SIGKILL: writes acknowledged with the default write concern
    (``w:1, j:false``) in the last ~second before a kill can be lost, as on
    mongod. Use ``WriteConcern(j=True)``, the ``fsync`` command, or
    ``extra_args=["--sync-on-commit"]`` when a test needs them to survive.
    Other daemon flags (e.g. ``--standalone``) also go in ``extra_args``.
    """
    storage = Path(storage_path).resolve()
    storage.mkdir(parents=True, exist_ok=True)
    config = storage.with_name(storage.name + ".toml")
    config.touch()
    log_path = storage.with_name(storage.name + ".log")
    log_start = log_path.stat().st_size if log_path.exists() else 0

    cmd = [
        sys.executable,
        "-m",
        "secantus",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port or 0),
        "--storage-path",
        str(storage),
        "--log-level",
        "INFO",
        *extra_args,
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=storage.parent,
        )

    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_bytes()[log_start:].decode(errors="replace")
        match = _LISTENING.search(text)
        if match:
            uri = f"mongodb://{match.group(1)}:{match.group(2)}/"
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server_process(proc)
            raise RuntimeError(
                f"SecantusDB did not start (exit code {proc.returncode}); "
                f"log {log_path}:\n{text[-2000:]}"
            )
        time.sleep(0.05)
    return proc, uri


def stop_server_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """Stop the server cleanly (SIGTERM, then SIGKILL after ``timeout`` s).

    Returns the process exit code. Safe to call on a process already gone.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def kill_server_process(proc: subprocess.Popen[bytes]) -> int:
    """Kill the server abruptly (SIGKILL), simulating a crash; return exit code."""
    if proc.poll() is None:
        proc.kill()
    return proc.wait()
