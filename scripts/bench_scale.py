"""Growth benchmark (not a test): training, retraining and tagging against corpus size.

    python scripts/bench_scale.py                     # 1k, 5k and 20k articles
    python scripts/bench_scale.py --sizes 10000       # the 10k retrain target
    python scripts/bench_scale.py --embedder sentence-transformers:/path/to/model
    python scripts/bench_scale.py --sizes 10000 --single-label   # one category per article

The sets repeat the dev sets of ../shared/data (jiegec + oec2003 + csl: 3,044 articles, 96
categories, the many-category case; `--sets` to choose), perturbed so that no two copies share
an embedding: copy k > 0 of an article keeps a random 90% of its paragraphs (seeded by the
article and k) and gets " · k" appended to its title. Its categories are the union of the
taxonomies; `--single-label` keeps only each article's first category (a single-label site
such as the large blog of the scale issue: softmax instead of one-vs-rest). For each size,
in fresh subprocesses:
  1. `hybrid train --workers 2` with an empty embedding cache (the first training);
  2. the same again on that cache (retraining from the embedding cache);
  3. `hybrid retrain` for a changed list (one category renamed, two merged, one added with
     only a description, one removed), from the model of step 1;
  4. `hybrid tag-file --workers 2` over as many other copies (their embeddings not cached).
It prints seconds, seconds per 1,000 articles (flat when cost is linear) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mongo import SHARED, timed

from hybrid.embed import DEFAULT_EMBEDDER

SETS = ("jiegec", "oec2003", "csl")


def perturbed(record: dict[str, Any], k: int) -> dict[str, Any]:
    if k == 0:
        return record
    rng = random.Random(f"{record['id']}/{k}")
    paragraphs = (record.get("content") or "").split("\n\n")
    kept = [p for p in paragraphs if rng.random() < 0.9] or paragraphs[:1]
    return {**record, "id": f"{record['id']}~{k}", "title": f"{record.get('title') or ''} · {k}",
            "content": "\n\n".join(kept)}


def write_set(path: Path, records: list[dict[str, Any]], n: int, first_copy: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            k = first_copy + i // len(records)
            fh.write(json.dumps(perturbed(records[i % len(records)], k), ensure_ascii=False)
                     + "\n")


def union_taxonomy(path: Path, sets: list[str]) -> None:
    names: dict[str, dict] = {}
    for name in sets:
        for entry in json.loads((SHARED / "taxonomies" / f"{name}.json").read_text("utf-8")):
            names.setdefault(entry["name"], entry)
    path.write_text(json.dumps(list(names.values()), ensure_ascii=False), encoding="utf-8")


def changed_taxonomy(old: Path, path: Path) -> None:
    """The acceptance change of the taxonomy issue: rename, merge, add, remove."""
    entries = [e for e in json.loads(old.read_text("utf-8"))
               if e["name"] not in ("devops", "misc", "others", "csdn")]
    entries += [{"name": "运维", "aliases": ["devops"]},
                {"name": "杂项", "aliases": ["misc", "others"]},
                {"name": "数据库", "description": "关系型与非关系型数据库的设计、索引与查询优化",
                 "keywords": ["MySQL", "PostgreSQL", "Redis", "索引", "SQL"]}]
    path.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")


def measure(n: int, records: list[dict[str, Any]], work: Path, workers: int,
            tag: bool, embedder: str) -> dict[str, Any]:
    hybrid = [sys.executable, "-m", "hybrid.cli", "--quiet", "--cache-dir",
              str(work / f"cache-{n}"), "--embedder", embedder]
    train_file, tag_in = work / f"train-{n}.jsonl", work / f"new-{n}.jsonl"
    write_set(train_file, records, n, first_copy=0)
    # copies numbered after the training ones: texts no cache has seen
    write_set(tag_in, records, n, first_copy=n // len(records) + 1)
    taxonomy = work / "taxonomy.json"
    train = [*hybrid, "train", "--data", str(train_file), "--taxonomy", str(taxonomy),
             "--out", str(work / f"model-{n}"), "--workers", str(workers), "--json"]
    runs = {"first training": timed(train, {}), "retrain from cache": timed(train, {})}
    changed_taxonomy(taxonomy, work / "taxonomy-v2.json")
    runs["hybrid retrain (list changed)"] = timed(
        [*hybrid, "retrain", "--taxonomy", str(work / "taxonomy-v2.json"), "--model",
         str(work / f"model-{n}"), "--out", str(work / f"model-{n}-v2"), "--data",
         str(train_file), "--workers", str(workers), "--json"], {})
    if tag:
        runs[f"tag-file --workers {workers}"] = timed(
            [*hybrid, "tag-file", str(tag_in), str(work / f"out-{n}.jsonl"), "--model",
             str(work / f"model-{n}"), "--workers", str(workers), "--json"], {})
    rows = {}
    for name, run in runs.items():
        rows[name] = {"seconds": run["wall_seconds"],
                      "seconds_per_1k": round(run["wall_seconds"] / n * 1000, 2),
                      "articles_per_second": round(n / run["wall_seconds"], 1),
                      "cpu_seconds": run["cpu_seconds"], "peak_rss_mb": run["peak_rss_mb"]}
    metrics = runs["retrain from cache"]["output"]["metrics"]
    rows["retrain from cache"].update(oof_accuracy=round(metrics["accuracy_top1"], 3),
                                      oof_macro_f1=round(metrics["macro_f1_top1"], 3))
    return {"articles": n, **rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-tag", dest="tag", action="store_false",
                        help="Only train and retrain (tagging cost per article is flat).")
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                        help="Embedder spec, as `hybrid --embedder` takes it.")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--single-label", action="store_true",
                        help="Keep only each article's first category.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    records = [json.loads(line) for name in args.sets
               for line in (SHARED / f"{name}.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    if args.single_label:
        records = [{**r, "categories": r["categories"][:1]} for r in records]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        union_taxonomy(work / "taxonomy.json", args.sets)
        results = []
        for n in args.sizes:
            results.append(measure(n, records, work, args.workers, args.tag, args.embedder))
            if not args.json:
                print_rows(results[-1])
    if args.json:
        print(json.dumps(results, indent=1))


def print_rows(result: dict[str, Any]) -> None:
    for name, r in result.items():
        if name == "articles":
            continue
        print(f"{result['articles']:>6} articles  {name:<30} {r['seconds']:>8.1f} s  "
              f"{r['seconds_per_1k']:>7.2f} s/1k  {r['articles_per_second']:>7.1f} art/s  "
              f"CPU {r['cpu_seconds']:>7.1f} s  peak RSS {r['peak_rss_mb']:>5} MB", flush=True)


if __name__ == "__main__":
    main()
