"""Training benchmark (not a test): `hybrid train --workers N` on real long posts, end to end.

    python scripts/bench_train.py                        # 5,500 posts, this tree
    python scripts/bench_train.py --articles 1100 --tree ../before --tree . --rounds 2

`../shared/data/swiftgg.jsonl` (564 real long posts, 61 categories) is repeated to
`--articles` posts, every copy with its own id and title (a `#k` suffix): training keeps
every record it is given (it de-duplicates nothing), and a distinct title makes every
article embedding new, so none comes from a cache. Tag candidates repeat across copies, as
a site's vocabulary does, and their embeddings are cached after the first copy.

Each run is `hybrid train --workers N` in a subprocess, with the code of one `--tree` and
a fresh, empty cache directory (`--cache-dir`). It reports the wall seconds, the peak RSS
and CPU seconds of the process tree (`bench.PeakRSS`), the 1-minute load average before it
started, and the seconds of each stage: as the manifest reports them (`stage_seconds`), else
(older code) the seconds between the command's progress lines. With several trees, the trees
alternate, `--rounds` times each, so every tree meets the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import SHARED, PeakRSS, cli, describe, load_records, taxonomy_file, write_jsonl

THIS_TREE = Path(__file__).resolve().parents[1]
# the progress line that starts each stage → its name in the report
_STAGES = {"featurizing": "featurize", "fitting the category classifier": "classifier",
           "fitting the zero-shot category model": "classifier", "fitting the tagger": "tagger"}


def repeated(records: list[dict], n: int) -> list[dict]:
    """`n` posts: the records over and over, each copy after the first with its own id and
    title."""
    out = []
    for i in range(n):
        record, copy = records[i % len(records)], i // len(records)
        if copy:
            record = {**record, "id": f"{record['id']}-{copy}",
                      "title": f"{record.get('title') or ''} #{copy}"}
        out.append(record)
    return out


def train_run(tree: Path, data: Path, taxonomy: Path, workers: int, work: Path) -> dict:
    """One `hybrid train` with `tree`'s code and an empty cache: wall seconds, peak RSS, CPU
    seconds, and each stage's seconds and the tree's CPU seconds in it."""
    cache, out = (Path(tempfile.mkdtemp(prefix=p, dir=work)) for p in ("cache-", "model-"))
    cmd, env = cli(tree, "--cache-dir", str(cache), "train", "--data", str(data),
                   "--taxonomy", str(taxonomy), "--out", str(out), "--workers", str(workers),
                   "--json")
    cmd.remove("--quiet")  # the progress lines mark the stages
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    with PeakRSS(proc.pid) as rss:
        marks = [("start", 0.0, 0.0)]  # each stage, when its progress line came, CPU seconds

        def read_progress() -> None:
            for line in proc.stderr:
                log.append(line)
                stage = next((name for text, name in _STAGES.items() if line.startswith(text)),
                             None)
                if stage:
                    marks.append((stage, time.perf_counter() - started, rss.cpu_seconds))

        reader = threading.Thread(target=read_progress, daemon=True)
        reader.start()
        stdout = proc.stdout.read()
        proc.wait()
        reader.join()
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} ({tree}) exited {proc.returncode}:\n"
                           f"{''.join(log)[-2000:]}")
    ends = [(at, cpu) for _, at, cpu in marks[1:]] + [(seconds, rss.cpu_seconds)]
    # "start": start-up and loading the articles; the last stage ends with saving the model
    stages = {name: round(end - at, 1) for (name, at, _), (end, _) in zip(marks, ends,
                                                                          strict=True)}
    # the process tree's CPU seconds between the same lines: seconds x 2 when both cores work
    stage_cpu = {name: round(end - cpu, 1) for (name, _, cpu), (_, end) in zip(marks, ends,
                                                                               strict=True)}
    manifest = json.loads(stdout.strip().splitlines()[-1])
    if "stage_seconds" in manifest["training"]:  # without start-up and saving
        stages = {"start": stages["start"], **manifest["training"]["stage_seconds"]}
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(rss.peak / 2**20),
            "cpu_seconds": round(rss.cpu_seconds, 1), "load_before": round(load, 2),
            "stages": stages, "stage_cpu_seconds": stage_cpu,
            "training_seconds": manifest["training"]["seconds"],
            "articles": manifest["training"]["articles"]
            + manifest["training"]["tag_only_articles"],
            "oof": {k: round(v, 4) for k, v in manifest["metrics"].items()
                    if isinstance(v, float)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "swiftgg.jsonl")
    parser.add_argument("--taxonomy", default="swiftgg",
                        help="the name of a list in ../shared/data/taxonomies")
    parser.add_argument("--articles", type=int, default=5500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tree", type=Path, action="append",
                        help="a checkout whose code trains (repeatable; default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the runs as JSON too")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree or [THIS_TREE]]
    runs: list[tuple[Path, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        data = write_jsonl(work / "train.jsonl",
                           repeated(load_records([args.data]), args.articles))
        taxonomy = taxonomy_file(args.taxonomy, work)
        for _ in range(args.rounds):
            for tree in trees:
                run = train_run(tree, data, taxonomy, args.workers, work)
                runs.append((tree, run))
                print(f"{describe(tree)}: {run['seconds']} s, {run['peak_rss_mb']} MB, "
                      f"{run['cpu_seconds']} CPU s, load {run['load_before']}, "
                      f"stages {run['stages']}, CPU s by progress line {run['stage_cpu_seconds']}, "
                      f"out of fold {run['oof']}", flush=True)
    print(f"\n{args.articles} posts from {args.data.name}, `hybrid train --workers "
          f"{args.workers}`, cold cache; {os.cpu_count()} cores")
    print(f"{'tree':<60} {'seconds':>8} {'peak RSS':>9} {'CPU s':>7} {'load':>5}  stages (s)")
    for tree, run in runs:
        stages = " ".join(f"{k} {v}" for k, v in run["stages"].items())
        print(f"{describe(tree):<60} {run['seconds']:>8} {run['peak_rss_mb']:>6} MB "
              f"{run['cpu_seconds']:>7} {run['load_before']:>5}  {stages}")
    if args.json:
        print(json.dumps([{"tree": str(t), **r} for t, r in runs]))


if __name__ == "__main__":
    sys.exit(main())
