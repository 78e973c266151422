"""Scale-out benchmark (not a test): `hybrid run --engine ray` against `--workers N` on this
machine, the MongoDB write ceiling, and what 1M articles would take on a cluster.

    python scripts/bench_scale_out.py [--model DIR] [--articles 3132] [--workers 2]
                                      [--batch-size 64] [--mongo-uri URI] [--json]

1. Articles: jiegec + oec2003 from ../shared/data as perturbed copies (`bench_scale.py`:
   each copy keeps a random 90% of the paragraphs and gets " · k" on its title), copies 1
   on. Without --model, copy 0 trains one (`hybrid train --workers 2`). They are imported
   into two databases of one server: SecantusDB as a child process, or --mongo-uri.
2. Three runs, each a subprocess with a fresh embedding cache and its own database:
   `hybrid run --workers N`; `hybrid run --engine ray --workers N`, which starts a Ray
   instance on this machine and stops it, both inside the run; and the same joining a Ray
   instance started before it (`ray start --head --block --num-cpus N`, `--ray-address`),
   as runs on a cluster do. Reported: articles/s as the run report gives it (pool or Ray
   start-up and model loading included), wall seconds, peak RSS of the whole process tree
   (Ray's own processes and the head's included), sampled every 0.1 s, and the server's
   CPU. Not the tree's CPU: the driver never reaps Ray's processes, so `getrusage` would
   not see theirs. Then the first two each again on two batches only (`--limit`), for the
   fixed cost of a run (start-up and model loading) and the rate once running: the extra
   articles of the full run over its extra wall seconds.
3. The ceiling: the guarded bulk writes alone (`Store.write`, batches of --batch-size),
   rewriting the labels the Ray run wrote with a new `tagged_at`, from 1 and from 2 writer
   processes at once; and, for comparison, the scan that reads them (`Store.scan`).
4. The hours for 1M articles on 4 hosts x 16 cores, from the rate per worker of the run
   that joined a running instance, and the write rate.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # mongo_server
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mongo import SHARED, timed
from bench_scale import union_taxonomy, write_set
from mongo_server import start_server_process, stop_server_process

from hybrid.config import Config
from hybrid.mongo.store import Store, Write, now

SETS = ["jiegec", "oec2003"]  # the docstring's sets: the throughput in docs/scale.md
HOSTS, CORES = 4, 16
SHORT_BATCHES = 2  # the short run that measures start-up: two batches
TARGET = 1_000_000
HYBRID = [sys.executable, "-m", "hybrid.cli", "--quiet"]


@contextmanager
def server(uri: str | None, work: Path):
    """A MongoDB URI and a function giving the server's CPU seconds so far (0 for --mongo-uri)."""
    if uri:
        yield uri, lambda: 0.0
        return
    proc, uri = start_server_process(work / "db")
    try:
        cpu = psutil.Process(proc.pid)
        yield uri, lambda: sum(cpu.cpu_times()[:2])
    finally:
        stop_server_process(proc)


# Ray's token authentication, as docs/scale.md sets it up on a cluster: `ray start` and the
# driver both read the token from ~/.ray/auth_token (a local `ray.init` writes one)
TOKEN_AUTH = {"RAY_AUTH_MODE": "token"}


@contextmanager
def ray_head(workers: int, work: Path):
    """A Ray instance on this machine started before the run, as a cluster is: its address
    and the pid of `ray start --block`, whose children are Ray's processes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = work / "ray-head.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head",
                                 "--block", f"--port={port}", f"--num-cpus={workers}",
                                 "--include-dashboard=false", "--node-ip-address=127.0.0.1"],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **TOKEN_AUTH})
    try:
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None:
                raise RuntimeError(f"ray start exited {proc.returncode}: {log.read_text()}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", proc.pid
    finally:
        tree = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        _, alive = psutil.wait_procs(tree, timeout=15)
        for leftover in alive:
            leftover.kill()


def tag(name: str, engine_args: list[str], config: Config, model: Path, work: Path,
        server_cpu: Any, also: tuple[int, ...] = (), env: dict[str, str] | None = None
        ) -> dict[str, Any]:
    env = {"HYBRID_MONGO_URI": config.mongo_uri, "HYBRID_MONGO_DB": config.mongo_db,
           "HYBRID_CONFIG": "/nonexistent/hybrid.toml", **(env or {})}
    before = server_cpu()
    run = timed([*HYBRID, "--cache-dir", str(work / f"cache-{name}"), "run", "--model",
                 str(model), *engine_args, "--batch-size", str(config.batch_size), "--json"],
                env, also)
    report = run.pop("output")
    run.pop("server_cpu_seconds")
    run.pop("cpu_seconds")
    return {"articles_per_second": report["articles_per_second"],
            "tagged": report["counts"]["tagged"], "failed": report["counts"]["failed"],
            **run, "server_cpu_seconds": round(server_cpu() - before, 1)}


def _write_share(config: Config, writes: list[Write]) -> tuple[int, float, float]:
    """One writer process: its writes in batches; (written, start, end)."""
    with Store(config) as store:
        start, written = time.time(), 0
        for i in range(0, len(writes), config.batch_size):
            written += store.write(writes[i:i + config.batch_size]).written
        return written, start, time.time()


def write_rate(config: Config, writers: int) -> dict[str, Any]:
    """The labels the run wrote, written again (a new `tagged_at`, so every write changes the
    document) through `Store.write`'s guarded bulk writes, by `writers` processes at once."""
    with Store(config) as store:
        started = time.perf_counter()
        scanned = list(store.scan())
        scan_seconds = time.perf_counter() - started
    writes = [Write(article, {**owned["hybrid"], "tagged_at": now()}, owned["categories"],
                    owned["tags"]) for article, owned in scanned]
    shares = [writes[i::writers] for i in range(writers)]
    with ProcessPoolExecutor(writers, mp_context=get_context("spawn")) as pool:
        done = list(pool.map(_write_share, [config] * writers, shares))
    written = sum(n for n, _, _ in done)
    seconds = max(end for *_, end in done) - min(start for _, start, _ in done)
    return {"writers": writers, "written": written, "of": len(writes),
            "seconds": round(seconds, 2), "articles_per_second": round(written / seconds, 1),
            "scan_articles_per_second": round(len(scanned) / scan_seconds, 1)}


def projection(ray: dict[str, Any], workers: int, ceiling: float) -> dict[str, Any]:
    per_worker = ray["articles_per_second"] / workers
    cluster = per_worker * HOSTS * CORES
    rate = min(cluster, ceiling)
    return {"per_worker": round(per_worker, 1), "cluster_workers": HOSTS * CORES,
            "cluster_compute": round(cluster, 1), "write_ceiling": round(ceiling, 1),
            "limited_by": "workers" if cluster <= ceiling else "MongoDB writes",
            "hours": round(TARGET / rate / 3600, 2)}


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    records = [json.loads(line) for name in SETS
               for line in (SHARED / f"{name}.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    model = args.model
    if model is None:
        write_set(work / "train.jsonl", records, len(records), first_copy=0)
        union_taxonomy(work / "taxonomy.json", SETS)
        model = work / "model"
        subprocess.run([*HYBRID, "--cache-dir", str(work / "cache-train"), "train", "--data",
                        str(work / "train.jsonl"), "--taxonomy", str(work / "taxonomy.json"),
                        "--out", str(model), "--workers", "2"], check=True, stdout=sys.stderr)
    write_set(work / "articles.jsonl", records, args.articles, first_copy=1)
    articles = [json.loads(line) for line in
                (work / "articles.jsonl").read_text("utf-8").splitlines()]
    with server(args.mongo_uri, work) as (uri, server_cpu):
        base = Config(mongo_uri=uri, batch_size=args.batch_size, mongo_timeout=60.0)
        configs = {name: replace(base, mongo_db=f"bench_scale_out_{name}")
                   for name in ("local", "ray", "ray_joined", "local_short", "ray_short")}
        for config in configs.values():
            with Store(config) as store:
                store.client.drop_database(config.mongo_db)
                store.import_records(articles)
        workers = str(args.workers)
        local = tag("local", ["--workers", workers], configs["local"], model, work, server_cpu)
        ray = tag("ray", ["--engine", "ray", "--workers", workers], configs["ray"], model,
                  work, server_cpu)
        short = ["--limit", str(SHORT_BATCHES * args.batch_size)]
        local_short = tag("local_short", ["--workers", workers, *short],
                          configs["local_short"], model, work, server_cpu)
        ray_short = tag("ray_short", ["--engine", "ray", "--workers", workers, *short],
                        configs["ray_short"], model, work, server_cpu)
        with ray_head(args.workers, work) as (address, head):
            joined = tag("ray_joined", ["--engine", "ray", "--workers", workers,
                                        "--ray-address", address], configs["ray_joined"],
                         model, work, server_cpu, (head,), TOKEN_AUTH)
        writes = [write_rate(configs["ray_joined"], n) for n in (1, 2)]
        if args.mongo_uri:
            for config in configs.values():
                with Store(config) as store:
                    store.client.drop_database(config.mongo_db)
    ceiling = max(w["articles_per_second"] for w in writes)
    return {"articles": len(articles), "workers": args.workers, "batch_size": args.batch_size,
            "server": "--mongo-uri" if args.mongo_uri else "SecantusDB (child process)",
            "local": local, "ray": ray, "ray_joined": joined,
            "ray_vs_local": round(ray["articles_per_second"] / local["articles_per_second"], 3),
            "ray_joined_vs_local": round(joined["articles_per_second"]
                                         / local["articles_per_second"], 3),
            "start_up": {"local": start_up(local, local_short),
                         "ray": start_up(ray, ray_short)},
            "writes": writes, "projection": projection(joined, args.workers, ceiling)}


def start_up(full: dict[str, Any], short: dict[str, Any]) -> dict[str, Any]:
    """A run's fixed cost and its rate once running, from a full run and a short one: the
    short run's wall seconds, and the articles the full run tagged beyond it per extra
    second."""
    extra = full["wall_seconds"] - short["wall_seconds"]
    return {"short_articles": short["tagged"], "short_wall_seconds": short["wall_seconds"],
            "steady_articles_per_second": round((full["tagged"] - short["tagged"]) / extra, 1)}


def show(result: dict[str, Any]) -> None:
    print(f"{result['articles']} articles, --workers {result['workers']}, --batch-size "
          f"{result['batch_size']}, {result['server']}")
    for name in ("local", "ray", "ray_joined"):
        r = result[name]
        print(f"  {name:10} {r['articles_per_second']:7.1f} articles/s  wall "
              f"{r['wall_seconds']:6.1f} s  peak RSS {r['peak_rss_mb']:5} MB  server CPU "
              f"{r['server_cpu_seconds']} s  "
              f"(tagged {r['tagged']}, failed {r['failed']})")
    print(f"  Ray at {result['ray_vs_local']:.0%} of the local engine's throughput with its "
          f"own instance, {result['ray_joined_vs_local']:.0%} joining a running one")
    for name, s in result["start_up"].items():
        print(f"  {name:10} {s['short_articles']} articles in {s['short_wall_seconds']} s wall "
              f"(start-up and model loading); {s['steady_articles_per_second']} articles/s "
              "after that")
    for w in result["writes"]:
        print(f"  guarded bulk writes, {w['writers']} writer(s): {w['articles_per_second']:.0f} "
              f"articles/s ({w['written']}/{w['of']} in {w['seconds']} s); the scan alone "
              f"{w['scan_articles_per_second']:.0f} articles/s")
    p = result["projection"]
    rate = min(p["cluster_compute"], p["write_ceiling"])
    print(f"  1M articles on {HOSTS} hosts x {CORES} cores: {p['per_worker']} articles/s per "
          f"worker x {p['cluster_workers']} workers = {p['cluster_compute']:.0f}/s; write "
          f"ceiling {p['write_ceiling']:.0f}/s; min = {rate:.0f}/s ({p['limited_by']}) -> "
          f"{TARGET:,} / {rate:.0f} / 3600 = {p['hours']} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="Model directory (default: train one).")
    parser.add_argument("--articles", type=int, default=3132)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mongo-uri", help="A MongoDB server (default: SecantusDB).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        result = measure(args, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        show(result)


if __name__ == "__main__":
    main()
