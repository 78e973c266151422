"""Benchmark of `hybrid serve` (not a test): real HTTP on 127.0.0.1, the load generator in
another process (scripts/bench_serve_load.py: an async httpx client, bounded concurrency).

    python scripts/bench_serve.py --model M            # articles from ../shared/data
    python scripts/bench_serve.py --model M --requests 300 --reload-requests 2000 --json

With 1 and then 2 workers, each server on a cache of its own, it measures: the time from
start to /v1/ready; latency p50/p95/p99 and requests/s at 1, 8 and 32 concurrent clients
(3,000-character articles: shared articles whose text is cut to 3,000 characters); and with
2 workers also latency at a steady 20 requests/s (an open loop, timed from when each request
was due), long posts (swiftgg, median 4.7k characters, as they are), saturated throughput
(`/v1/suggest` at 32 clients and `/v1/suggest-batch` of 64) beside `hybrid tag-file
--workers 2` on the same articles in the same run, and 10,000 requests with a reload in the
middle. Peak RSS is of the server's whole process tree, sampled every 0.1 s. Every phase
sends copies retitled for it, so no article embedding is cached from an earlier phase.

Train a model first, e.g. `hybrid train --data ../shared/data/jiegec.jsonl --taxonomy
../shared/data/taxonomies/jiegec.json --out /tmp/jiegec-model`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench import SHARED, PeakRSS, load_records
from more_itertools import chunked

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import serve_process  # starting `hybrid serve` is the tests' job: one copy of it

HYBRID = [sys.executable, "-m", "hybrid.cli"]


def generate(work: Path, **spec: Any) -> dict[str, Any]:
    """Run the load generator (scripts/bench_serve_load.py) in its own process."""
    path = work / "spec.json"
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("bench_serve_load.py")),
                          str(path), serve_process.API_KEY], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


# ---- the server ----------------------------------------------------------------------------
class Server:
    """`hybrid serve` started as the tests start it (tests/serve_process.py), with a cache
    of its own; the time until /v1/ready said 200, and the peak RSS of its process tree."""

    def __init__(self, model: str, workers: int, work: Path) -> None:
        started = time.perf_counter()
        self.cache = tempfile.mkdtemp(dir=work)
        self.served = serve_process.start(model, self.cache, work, workers=workers,
                                          timeout=300)
        self.ready_seconds = time.perf_counter() - started
        self.url = self.served.url
        self.rss = PeakRSS(self.served.proc.pid).__enter__()

    def stop(self) -> int:
        self.served.stop(120)
        self.rss.__exit__()
        return self.rss.peak


# ---- articles -------------------------------------------------------------------------------
def cut(records: list[dict], chars: int) -> list[dict]:
    """Articles whose title, description and content hold at least `chars` characters, cut
    to that many."""
    out = []
    for r in records:
        title, description = r.get("title") or "", r.get("description") or ""
        room = chars - len(title) - len(description)
        if room > 0 and len(r.get("content") or "") >= room:
            out.append({"id": r["id"], "title": title, "description": r.get("description"),
                        "content": r["content"][:room]})
    return out


def copies(articles: list[dict], n: int, salt: str) -> list[dict]:
    """`n` articles, retitled for this phase (no embedding cached from another phase)."""
    out = []
    for i in range(n):
        a = articles[i % len(articles)]
        out.append({**a, "id": f"{a['id']}#{salt}{i}", "title": f"{a['title']} ({salt}{i})"})
    return out


def stats(result: dict[str, Any], articles_per_request: int = 1) -> dict[str, Any]:
    lat = np.array(result["latencies"]) * 1000
    done = len(lat)
    return {"p50_ms": round(float(np.percentile(lat, 50)), 1) if done else None,
            "p95_ms": round(float(np.percentile(lat, 95)), 1) if done else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if done else None,
            "requests_per_s": round(done / result["seconds"], 1),
            "articles_per_s": round(done * articles_per_request / result["seconds"], 1),
            "requests": done, "errors": len(result["errors"]),
            "first_errors": result["errors"][:3]}


def tag_file_rate(model: str, articles: list[dict], work: Path, cache: str
                  ) -> dict[str, Any]:
    """`tag-file --workers 2` end to end, and without its start-up (a 2-article run), on
    the cache the 2-worker server used (its words are cached, as the server's were when its
    throughput was measured; these articles are new to it)."""
    out = {}
    for name, rows in (("startup", articles[:2]), ("all", articles)):
        infile = work / f"tf-{name}.jsonl"
        infile.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in rows),
                          encoding="utf-8")
        started = time.perf_counter()
        proc = subprocess.Popen([*HYBRID, "--quiet", "--cache-dir", cache,
                                 "tag-file", str(infile), str(work / f"tf-{name}.out"),
                                 "--model", model, "--workers", "2"],
                                env={**os.environ, "MONGODB_URI": ""}, stdout=subprocess.DEVNULL)
        with PeakRSS(proc.pid) as rss:
            assert proc.wait() == 0
        out[name] = time.perf_counter() - started
        out[f"{name}_rss_mb"] = rss.peak // 2**20
    n = len(articles)
    return {"articles": n, "seconds": round(out["all"], 2),
            "end_to_end_per_s": round(n / out["all"], 1),
            "steady_per_s": round((n - 2) / (out["all"] - out["startup"]), 1),
            "peak_rss_mb": out["all_rss_mb"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    short = cut(load_records(args.data), 3000)
    long = load_records([args.long]) if args.long.exists() else []
    report: dict[str, Any] = {"load_before": os.getloadavg(), "articles_3k": len(short),
                              "long_posts": len(long), "workers": {}}
    concurrencies = (1, 8, 32)
    for workers in (1, 2):
        server = Server(args.model, workers, work)
        phase: dict[str, Any] = {"start_to_ready_s": round(server.ready_seconds, 2)}
        generate(work, mode="closed", url=server.url, path="/v1/suggest",
                 bodies=copies(short, 20, f"warm{workers}-"), concurrency=2)
        for c in concurrencies:
            phase[f"closed_{c}"] = stats(generate(
                work, mode="closed", url=server.url, path="/v1/suggest",
                bodies=copies(short, max(args.requests, 10 * c), f"w{workers}c{c}-"),
                concurrency=c))
        if workers == 2:
            phase["open_20"] = stats(generate(
                work, mode="open", url=server.url, rate=20.0,
                bodies=copies(short, int(20 * args.rate_seconds), "open-")))
            if long:
                for c in (1, 8):
                    phase[f"long_closed_{c}"] = stats(generate(
                        work, mode="closed", url=server.url, path="/v1/suggest",
                        bodies=copies(long, max(args.requests // 2, 10 * c), f"long{c}-"),
                        concurrency=c))
            saturated = copies(short, args.saturated, "sat-")
            phase["saturated_suggest_32"] = stats(generate(
                work, mode="closed", url=server.url, path="/v1/suggest", bodies=saturated,
                concurrency=32))
            batches = [{"articles": chunk}
                       for chunk in chunked(copies(short, args.saturated, "batch-"), 64)]
            phase["saturated_batch_64x4"] = stats(generate(
                work, mode="closed", url=server.url, path="/v1/suggest-batch",
                bodies=batches, concurrency=4), articles_per_request=64)
            rss_before_reload = server.rss.peak
            result = generate(work, mode="closed", url=server.url, path="/v1/suggest",
                              bodies=copies(short, args.reload_requests, "reload-"),
                              concurrency=16, reload_at=args.reload_requests // 2)
            phase["reload"] = {**stats(result), "reload_status": result["reload"].get("status"),
                               "reload_seconds": round(result["reload"].get("seconds", 0), 2)}
            phase["peak_rss_mb_before_reload"] = rss_before_reload // 2**20
        phase["peak_rss_mb"] = server.stop() // 2**20
        report["workers"][workers] = phase
    if not args.skip_tag_file:
        report["tag_file"] = tag_file_rate(args.model, copies(short, args.saturated, "tf-"),
                                           work, server.cache)
    report["load_after"] = os.getloadavg()
    return report


def table(r: dict[str, Any]) -> str:
    two = r["workers"][2]
    rows = [("latency at 20 requests/s, 2 workers, 3,000-character article",
             "p50 ≤ 30 ms, p99 ≤ 150 ms",
             f"p50 {two['open_20']['p50_ms']} ms, p95 {two['open_20']['p95_ms']} ms, "
             f"p99 {two['open_20']['p99_ms']} ms ({two['open_20']['errors']} errors)")]
    if "tag_file" in r:
        tf = r["tag_file"]
        best = max(two["saturated_suggest_32"]["articles_per_s"],
                   two["saturated_batch_64x4"]["articles_per_s"])
        rows.append(("saturated throughput, 2 workers", "≥ 90% of `tag-file --workers 2`",
                     f"suggest ×32 clients {two['saturated_suggest_32']['articles_per_s']}/s, "
                     f"suggest-batch 64 ×4 {two['saturated_batch_64x4']['articles_per_s']}/s;"
                     f" tag-file {tf['steady_per_s']}/s steady ({tf['end_to_end_per_s']}/s end "
                     f"to end): {best / tf['steady_per_s']:.0%} of steady, "
                     f"{best / tf['end_to_end_per_s']:.0%} of end to end"))
    reload = two["reload"]
    rows += [("errors in 10,000 requests, a reload in the middle", "0",
              f"{reload['errors']} of {reload['requests'] + reload['errors']} (reload HTTP "
              f"{reload['reload_status']} in {reload['reload_seconds']} s)"),
             ("start to ready", "≤ 3 s", f"1 worker {r['workers'][1]['start_to_ready_s']} s, "
                                         f"2 workers {two['start_to_ready_s']} s"),
             ("peak RSS, 2 workers", "≤ 1.5 GB",
              f"{two['peak_rss_mb_before_reload']} MB serving, {two['peak_rss_mb']} MB with the "
              f"reload (1 worker: {r['workers'][1]['peak_rss_mb']} MB)")]
    out = ["| measure | required | measured |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out += ["", "| workers | clients | articles | p50 ms | p95 ms | p99 ms | requests/s |",
            "|---|---|---|---|---|---|---|"]
    for w, phase in r["workers"].items():
        for name, s in phase.items():
            if isinstance(s, dict) and "p50_ms" in s and not name.startswith(("sat", "rel")):
                kind = "long posts" if name.startswith("long") else "3,000 chars"
                clients = "20 req/s" if name == "open_20" else name.rsplit("_", 1)[1]
                out.append(f"| {w} | {clients} | {kind} | {s['p50_ms']} | {s['p95_ms']} | "
                           f"{s['p99_ms']} | {s['requests_per_s']} |")
    out.append(f"\nload average before {r['load_before']}, after {r['load_after']}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, nargs="+",
                        default=[SHARED / "jiegec.jsonl", SHARED / "oec2003.jsonl"])
    parser.add_argument("--long", type=Path, default=SHARED / "swiftgg.jsonl")
    parser.add_argument("--requests", type=int, default=400, help="per closed-loop phase")
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    parser.add_argument("--saturated", type=int, default=2000,
                        help="articles for the throughput phases and tag-file")
    parser.add_argument("--reload-requests", type=int, default=10_000)
    parser.add_argument("--skip-tag-file", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(table(report))


if __name__ == "__main__":
    main()
