"""Throughput of `hybrid run` (MongoDB) against `hybrid tag-file` on the same articles.

    python scripts/bench_mongo.py --model models/NAME [--data A.jsonl --data B.jsonl]
                                  [--workers 2] [--batch-size 64] [--json]

The articles (default: ../shared/data/jiegec.jsonl and oec2003.jsonl) are written to one
JSONL file for `tag-file` and imported into an embedded SecantusDB for `hybrid run`. Each
command runs as its own process with a fresh, empty embedding cache, so both do the same
work; the database overhead is the difference. Reported per command: articles/s as the
command measures it (model start-up included, Python start-up not), wall and CPU seconds,
and peak RSS of its whole process tree (main process plus workers, sampled every 0.1 s);
for `run`, also the CPU of the embedded server. CPU seconds are the fair comparison on a
busy machine, where articles/s moves with the load.
`measure()` is the function to call from scripts/bench.py.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], also: Sequence[int] = ()) -> dict[str, Any]:
    """The command's --json output, and its wall seconds, CPU seconds (its process tree) and
    peak RSS (of the tree, with the trees of the processes `also` names: servers it works
    with, sampled); the CPU this process spent meanwhile (an in-process server) too."""
    started, children, own = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN), _cpu(
        resource.RUSAGE_SELF)
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    roots, peak = [psutil.Process(pid) for pid in (proc.pid, *also)], 0
    while proc.poll() is None:
        try:
            tree = [p for root in roots for p in (root, *root.children(recursive=True))]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err[-2000:]}")
    return {"output": json.loads(out.strip().splitlines()[-1]),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(_cpu(resource.RUSAGE_CHILDREN) - children, 1),
            "server_cpu_seconds": round(_cpu(resource.RUSAGE_SELF) - own, 1),
            "peak_rss_mb": peak >> 20}


def measure(model: Path, data: list[Path], workers: int = 2, batch_size: int = 64
            ) -> dict[str, Any]:
    from secantus import SecantusDBServer

    from hybrid.config import Config
    from hybrid.mongo.store import Store

    hybrid = [sys.executable, "-m", "hybrid.cli", "--quiet"]
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as tmp:
        tmp_path = Path(tmp)
        records = [json.loads(line) for path in data
                   for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        infile = tmp_path / "articles.jsonl"
        infile.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                          encoding="utf-8")
        tag_file = timed(
            [*hybrid, "--cache-dir", str(tmp_path / "cache-tag-file"), "tag-file", str(infile),
             str(tmp_path / "out.jsonl"), "--model", str(model), "--workers", str(workers),
             "--batch-size", str(batch_size), "--json"], {})
        with SecantusDBServer(storage_path=str(tmp_path / "db")) as server:
            config = Config(mongo_uri=server.uri, mongo_db="bench", batch_size=500)
            with Store(config) as store:
                store.import_records(records)
            run = timed(
                [*hybrid, "--cache-dir", str(tmp_path / "cache-run"), "run", "--model",
                 str(model), "--workers", str(workers), "--batch-size", str(batch_size),
                 "--json"],
                {"HYBRID_MONGO_URI": server.uri, "HYBRID_MONGO_DB": "bench"})
    tag_file_out, run_out = tag_file.pop("output"), run.pop("output")
    tag_file.pop("server_cpu_seconds")
    return {
        "articles": len(records), "workers": workers, "batch_size": batch_size,
        "load_average": os.getloadavg()[1],
        "tag_file": {"articles_per_second": tag_file_out["articles_per_second"], **tag_file},
        "run": {"articles_per_second": run_out["articles_per_second"],
                "tagged": run_out["counts"]["tagged"], "failed": run_out["counts"]["failed"],
                **run},
        "run_vs_tag_file": round(run_out["articles_per_second"]
                                 / max(tag_file_out["articles_per_second"], 1e-9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, action="append",
                        help="JSONL articles (repeatable; default: jiegec + oec2003)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = args.data or [SHARED / "jiegec.jsonl", SHARED / "oec2003.jsonl"]
    result = measure(args.model, data, args.workers, args.batch_size)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name in ("tag_file", "run"):
        r = result[name]
        print(f"{name:8} {r['articles_per_second']:7.1f} articles/s  wall "
              f"{r['wall_seconds']:6.1f}s  CPU {r['cpu_seconds']:6.1f}s  peak RSS "
              f"{r['peak_rss_mb']} MB" + (f"  (server CPU {r['server_cpu_seconds']}s)"
                                          if "server_cpu_seconds" in r else ""))
    print(f"{result['articles']} articles, --workers {result['workers']}, "
          f"--batch-size {result['batch_size']}: hybrid run at "
          f"{result['run_vs_tag_file']:.0%} of tag-file throughput "
          f"(5-minute load average {result['load_average']:.1f})")


if __name__ == "__main__":
    main()
