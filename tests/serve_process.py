"""`hybrid serve` as a user starts it: a subprocess on 127.0.0.1, a free port, real HTTP
over TCP. `start` waits until /v1/ready says 200; `stop` sends SIGTERM and waits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

_LISTENING = re.compile(r"hybrid serve: (http://127\.0\.0\.1:\d+)/")
API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Served:
    proc: subprocess.Popen
    url: str
    log: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 60), **kwargs)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(model_dir: Path | str, cache_dir: Path | str, work: Path, *args: str,
          workers: int = 1, env: dict[str, str] | None = None, wait_ready: bool = True,
          timeout: float = 120) -> Served:
    log = work / f"serve-{time.monotonic_ns()}.log"
    environ = {**os.environ, "MONGODB_URI": "", "HYBRID_CONFIG": "/nonexistent/hybrid.toml",
               "HYBRID_API_KEY": API_KEY, **(env or {})}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybrid.cli", "--cache-dir", str(cache_dir), "serve",
             "--model", str(model_dir), "--port", "0", "--workers", str(workers), *args],
            stdout=subprocess.DEVNULL, stderr=sink, env=environ)
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        found = _LISTENING.search(log.read_text(encoding="utf-8", errors="replace"))
        url = found.group(1) if found else None
        if proc.poll() is not None and url is None:
            raise AssertionError(f"hybrid serve exited {proc.returncode}: {log.read_text()}")
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    served = Served(proc, url, log)
    while wait_ready:
        try:
            if httpx.get(f"{url}/v1/ready", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, served.text()
        assert time.monotonic() < deadline, served.text()
        time.sleep(0.05)
    return served
