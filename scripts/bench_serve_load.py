"""The load generator of scripts/bench_serve.py, in a process of its own so that its CPU is
not the server's: `python scripts/bench_serve_load.py SPEC.json API_KEY` prints the
measurements as JSON.

A closed loop (`concurrency` clients, each sending its next request when its answer came,
optionally an admin reload at request `reload_at`) or an open loop (one request every
1/`rate` s whatever the answers; latency counted from when each was due, so a slow server
is not hidden by requests that were never sent). Bounded: the bodies given, 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx


async def closed(url: str, path: str, bodies: list[Any], concurrency: int,
                 reload_at: int | None = None, key: str = "") -> dict[str, Any]:
    """`concurrency` clients, each sending the next body when its answer came."""
    latencies, errors, reload = [], [], {}
    todo = iter(enumerate(bodies))
    limits = httpx.Limits(max_connections=concurrency + 1)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def do_reload() -> None:
            started = time.perf_counter()
            r = await client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {key}"})
            reload.update(status=r.status_code, seconds=time.perf_counter() - started,
                          answer=r.json())

        async def user() -> None:
            tasks = []
            for i, body in todo:
                if i == reload_at:
                    tasks.append(asyncio.create_task(do_reload()))
                started = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.gather(*tasks)

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "seconds": seconds, "reload": reload}


async def open_loop(url: str, bodies: list[Any], rate: float) -> dict[str, Any]:
    """One request every 1/`rate` s whatever the answers; latency from when it was due."""
    latencies, errors = [], []
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=200)) as client:
        async def one(body: Any, due: float) -> None:
            try:
                r = await client.post("/v1/suggest", json=body)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - due)
                else:
                    errors.append(f"HTTP {r.status_code}")
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)

        started = time.perf_counter()
        tasks = []
        for i, body in enumerate(bodies):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "seconds": seconds, "reload": {}}


def main(spec_path: str, key: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec["mode"] == "open":
        result = asyncio.run(open_loop(spec["url"], spec["bodies"], spec["rate"]))
    else:
        result = asyncio.run(closed(spec["url"], spec["path"], spec["bodies"],
                                    spec["concurrency"], spec.get("reload_at"), key))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
