"""Run a real llama-cpp-python OpenAI-compatible server for LLM tests.

The model is assembled by ``scripts/setup_llm.sh``; tests should call
:func:`llama_server_available` and skip with its reason when it is false.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from hybrid.batch.processes import sigterm_interrupts

#: Same default as ``scripts/setup_llm.sh``.
DEFAULT_MODEL_PATH = Path.home() / ".cache" / "hybrid" / "qwen2.5-coder-0.5b-instruct.gguf"
MODEL_ENV_VAR = "HYBRID_TEST_GGUF"

_SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


def find_model() -> str | None:
    """Return the GGUF path from ``$HYBRID_TEST_GGUF`` or the default, if it exists."""
    env = os.environ.get(MODEL_ENV_VAR)
    candidate = Path(env).expanduser() if env else DEFAULT_MODEL_PATH
    return str(candidate) if candidate.is_file() else None


def llama_server_available() -> tuple[bool, str]:
    """Tell whether a server can be started; the string says why not."""
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return False, (
            f"llama-cpp-python[server] not installed (missing: {', '.join(missing)});"
            " run scripts/setup_llm.sh"
        )
    if find_model() is None:
        where = os.environ.get(MODEL_ENV_VAR) or str(DEFAULT_MODEL_PATH)
        return False, f"GGUF model not found at {where}; run scripts/setup_llm.sh"
    return True, ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no server log>"
    return "\n".join(text.splitlines()[-lines:])


def _models_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def run_llama_server(
    model_path: str,
    *,
    n_threads: int = 1,
    n_ctx: int = 4096,
    timeout: float = 120.0,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """Start ``llama_cpp.server`` on a free local port; yield ``http://127.0.0.1:PORT/v1``.

    Raises ``RuntimeError`` with the server log tail if it exits or does not
    answer ``/v1/models`` within ``timeout`` seconds. The server is terminated
    (then killed if needed) on exit, also when the caller's process gets SIGTERM.
    """
    # a SIGTERM to the script (a timeout, a closed session) stops the server too, even while
    # it loads
    with sigterm_interrupts(), tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
        log_path = Path(tmp) / "server.log"
        for attempt in range(3):
            port = _free_port()
            base_url = f"http://127.0.0.1:{port}/v1"
            cmd = [
                sys.executable, "-m", "llama_cpp.server",
                "--model", model_path,
                "--host", "127.0.0.1",
                "--port", str(port),
                "--n_threads", str(n_threads),
                "--n_threads_batch", str(n_threads),
                "--n_ctx", str(n_ctx),
                *extra_args,
            ]  # fmt: skip
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            try:
                deadline = time.monotonic() + timeout
                while not _models_ok(base_url):
                    if proc.poll() is not None:
                        tail = _tail(log_path)
                        if "address already in use" in tail.lower() and attempt < 2:
                            break  # lost the port race; try another port
                        raise RuntimeError(
                            f"llama server exited with code {proc.returncode}:\n{tail}"
                        )
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"llama server not ready after {timeout:.0f}s:\n{_tail(log_path)}"
                        )
                    time.sleep(0.5)
                else:
                    yield base_url
                    return
            finally:
                _stop(proc)
        raise RuntimeError(f"llama server could not bind a port:\n{_tail(log_path)}")
