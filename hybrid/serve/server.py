"""Run the service under uvicorn. Bind first (a port in use is a usage error, not a
traceback; port 0 picks a free one), start the fork server (it imports the model's code
meanwhile), verify the model (exit 4 before anything listens), import the web stack, and
start the workers loading: a worker is forked only once the fork server's imports are done,
so the web stack is imported before that wait, not after it.
Then serve until SIGTERM or SIGINT, which stop accepting, let the requests in flight finish
(up to `serve_timeout`), and stop the workers. SIGHUP reloads the model (`Service.reload`)."""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable

from hybrid.batch.processes import start_fork_server
from hybrid.config import Config
from hybrid.errors import HybridError, UsageError


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def serve(config: Config, model_dir: str, taxonomy: str | None, labels: str | None,
          data: str | None, api_key: str | None, announce: Callable[[str], None],
          access_log: bool = False) -> None:
    """Blocks until the server stops; a model that will not load raises `ModelError`."""
    started = time.monotonic()
    sock = bind(config.serve_host, config.serve_port)
    start_fork_server(model_dir)  # it imports the model's code while the model is verified
    from hybrid.llm.check.gate import fallback_policy
    from hybrid.serve.generation import pin, sweep
    from hybrid.serve.workers import launch
    from hybrid.taxonomy import load_taxonomy

    try:
        served = load_taxonomy(taxonomy) if taxonomy else None
        sweep()
        generation = pin(model_dir, 1, served, config.model_key)
    except HybridError:
        sock.close()
        raise
    try:
        policy = fallback_policy(config, generation.path)  # no check: refused before it loads
    except HybridError as exc:  # named by the directory given, not the pinned copy
        sock.close()
        generation.discard()
        exc.message = exc.message.replace(str(generation.path), str(model_dir))
        raise
    import uvicorn  # the web stack, while the fork server imports (`launch` waits for it)

    from hybrid.serve.app import create_app
    from hybrid.serve.service import Service

    starting = launch(generation, config, config.serve_workers)
    service = Service(config, generation, starting, served, labels, data, api_key)
    server = uvicorn.Server(uvicorn.Config(
        create_app(service), log_config=None, access_log=access_log, server_header=False,
        timeout_graceful_shutdown=math.ceil(config.serve_timeout), backlog=4096,
        timeout_keep_alive=5, lifespan="on"))
    logging.getLogger("hybrid.serve").setLevel(logging.INFO)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    fatal: list[HybridError] = []

    def stop_on(exc: HybridError) -> None:
        fatal.append(exc)
        server.should_exit = True

    service.on_fatal = stop_on
    service.started = started
    service.exiting = lambda: server.should_exit
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    announce(f"hybrid serve: http://{shown}:{port}/ (model {model_dir}, "
             f"{config.serve_workers} worker{'s' if config.serve_workers > 1 else ''})")
    if policy.unchecked:
        why = (policy.check or "").replace(str(generation.path), str(model_dir))
        announce(f"the LLM fallback is UNCHECKED (--llm-unchecked): {why}")
    server.run(sockets=[sock])
    if fatal:
        raise fatal[0]
