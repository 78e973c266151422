"""Throughput benchmark (not a test): `hybrid tag-file` end to end, and each stage alone.

    python scripts/bench.py                       # jiegec + oec2003 from ../shared/data
    python scripts/bench.py --data a.jsonl --repeat 4 --workers 2 --json
    python scripts/bench.py --long-posts          # the same sites as 4-8k-character posts
    python scripts/bench.py --long-posts --compare ../before ../older --rounds 2 --speed-only

Every run also benches real long posts, unjoined, as sites write them (code blocks, tables,
logs, long English passages): `../shared/data/swiftgg.jsonl` tagged with the model of the
first set (a model from another site), and each set's own posts of at least
`REAL_LONG_CHARS` characters tagged with its own model.

It trains a model per set on 80% of its articles with `hybrid train --workers N` (the
manifest's seconds are the training time), then
  1. runs `hybrid tag-file --workers N` in a subprocess over each case's articles (repeated
     --repeat times, every copy retitled so no article embedding is cached) and reports
     articles/s, the seconds to the first article written (start-up), the peak RSS and the
     CPU seconds of the whole process tree, and the load average before the run: with an
     empty cache (cold), and with a copy of the cache the model was trained with (warm: tag
     candidates seen in training are cached, as on the machine that runs the nightly job);
     `--compare DIR...` does the same with the code checked out in each DIR (its own models,
     trained on the same articles), the trees alternating, `--rounds` times each;
  2. times each stage alone in this process on the same articles: load, clean, embed,
     segment (words and tag candidates), classify, tag, write;
  3. reports category accuracy and tag F1@5 on the held-out 20%, so speed never hides quality.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from hybrid.config import Config, load_config
from hybrid.evaluation.metrics import category_metrics, tag_metrics
from hybrid.ingest.article import parse_article
from hybrid.ingest.clean import clean
from hybrid.ingest.keys import label_key
from hybrid.ingest.records import read_jsonl
from hybrid.learn.model import HybridModel
from hybrid.llm.prompt import estimate_tokens
from hybrid.llm.stats import gpt_4o_mini_cost

THIS_TREE = Path(__file__).resolve().parents[1]
SHARED = THIS_TREE.parent / "shared" / "data"
REAL_LONG_CHARS = 4000  # a set's own long posts: as long as the joined ones


class PeakRSS:
    """Samples the summed RSS of a process and its children until stopped, and the CPU
    seconds each used, as last seen: workers started by a forkserver are never reaped by
    the process that was run, so `getrusage(RUSAGE_CHILDREN)` would miss them."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
                for p in procs:
                    times = p.cpu_times()
                    self._cpu[p.pid] = times.user + times.system
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load_records(paths: list[Path]) -> list[dict]:
    return [r for p in paths for r in read_jsonl(p) if isinstance(r, dict)]


def stages(records: list[dict], model: HybridModel, config: Config) -> dict:
    """Each stage timed alone, in this process, one batch of 64 at a time."""
    timings = dict.fromkeys(["load", "clean", "embed", "segment", "classify", "tag", "write"],
                            0.0)
    featurizer = model.featurizer
    for start in range(0, len(records), 64):
        batch = records[start:start + 64]
        t0 = time.perf_counter()
        articles = [parse_article(json.loads(json.dumps(r)), config) for r in batch]
        t1 = time.perf_counter()
        texts = [clean(a) for a in articles]
        t2 = time.perf_counter()
        # the embedder itself, not its cache: a new article is never in the cache
        raw_embedder = getattr(featurizer.embedder, "inner", featurizer.embedder)
        raw_embedder.embed([t.embedding_input(featurizer.embed_budget) for t in texts])
        t3 = time.perf_counter()
        features = featurizer.transform(texts)  # embeddings now come from the cache
        t4 = time.perf_counter()
        model.classifier.predict_proba(features)
        t5 = time.perf_counter()
        tags = model.tagger.suggest(features)
        t6 = time.perf_counter()
        for a, t in zip(articles, tags, strict=True):
            json.dumps({"id": a.id, "tags": [x.tag for x in t]}, ensure_ascii=False)
        t7 = time.perf_counter()
        for name, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4,
                                           t6 - t5, t7 - t6), strict=True):
            timings[name] += seconds
    return {name: round(len(records) / max(seconds, 1e-9), 1)
            for name, seconds in timings.items()}


def quality(records: list[dict], model: HybridModel, config: Config) -> dict:
    articles = [parse_article(r, config) for r in records]
    preds = model.predict(articles)
    names = model.taxonomy.names
    Y = np.array([[int(n in model.taxonomy.map_labels(a.categories)[0]) for n in names]
                  for a in articles])
    proba = np.array([[p.scores[n] for n in names] for p in preds])
    sets = np.array([[int(n in p.categories) for n in names] for p in preds])
    cats = category_metrics(Y, sets, proba, names)
    tags = tag_metrics([a.tags for a in articles], [p.tags for p in preds])
    return {"accuracy_top1": round(cats["accuracy_top1"], 3),
            "macro_f1_top1": round(cats["macro_f1_top1"], 3),
            "tag_f1_at_5": round(tags["f1_at_5"], 3)}


def usual_way(records: list[dict], model: HybridModel, config: Config) -> dict:
    """KeyBERT as its documentation shows it for Chinese: CountVectorizer(tokenizer=jieba.lcut)
    and one extract_keywords call per document, with the same embedder (no cache)."""
    import jieba
    from keybert import KeyBERT
    from sklearn.feature_extraction.text import CountVectorizer

    from hybrid.embed.keybert_backend import KeyBERTBackend

    raw_embedder = getattr(model.featurizer.embedder, "inner", model.featurizer.embedder)
    kw_model = KeyBERT(model=KeyBERTBackend(raw_embedder))
    articles = [parse_article(r, config) for r in records]
    started = time.perf_counter()
    predicted = []
    for a in articles:
        text = clean(a).lexical_text()
        try:
            vectorizer = CountVectorizer(tokenizer=jieba.lcut, token_pattern=None)
            predicted.append([k for k, _ in kw_model.extract_keywords(
                text, vectorizer=vectorizer, top_n=5)])
        except ValueError:  # a document with no usable word
            predicted.append([])
    seconds = time.perf_counter() - started
    return {"articles": len(articles), "articles_per_second": round(len(articles) / seconds, 1),
            "tag_f1_at_5": round(tag_metrics([a.tags for a in articles], predicted)["f1_at_5"], 3)}


def cheap_way(train: list[dict], test: list[dict], model: HybridModel, config: Config) -> dict:
    """jieba.analyse.extract_tags for tags and TF-IDF + LR for categories, timed on `test`."""
    from hybrid.evaluation import baselines

    names = model.taxonomy.names
    label = model.taxonomy.map_labels
    train_articles = [parse_article(r, config) for r in train]
    test_articles = [parse_article(r, config) for r in test]
    Y_train = np.array([[int(n in label(a.categories)[0]) for n in names] for a in train_articles])
    Y_test = np.array([[int(n in label(a.categories)[0]) for n in names] for a in test_articles])
    keep = Y_train.sum(axis=1) > 0
    pipeline = baselines.tfidf_lr(bool((Y_train[keep].sum(axis=1) == 1).all()))
    target = Y_train[keep]
    pipeline.fit([clean(a).lexical_text() for a, k in zip(train_articles, keep, strict=True) if k],
                 target.argmax(axis=1) if (target.sum(axis=1) == 1).all() else target)
    started = time.perf_counter()
    texts = [clean(a).lexical_text() for a in test_articles]
    proba = pipeline.predict_proba(texts)
    tags = [baselines.jieba_tags(t) for t in texts]
    seconds = time.perf_counter() - started
    full = np.zeros((len(texts), len(names)))
    full[:, [j for j in range(len(names)) if Y_train[keep][:, j].any()]] = proba
    cats = category_metrics(Y_test, baselines.label_sets(full), full, names)
    return {"articles": len(texts), "articles_per_second": round(len(texts) / seconds, 1),
            "accuracy_top1": round(cats["accuracy_top1"], 3),
            "tag_f1_at_5": round(tag_metrics([a.tags for a in test_articles], tags)["f1_at_5"], 3)}


PROMPT_OVERHEAD_TOKENS = 350  # instructions + the authorized category list
OUTPUT_TOKENS = 60  # {"categories": [...], "tags": [...]}


def hosted_llm_cost(records: list[dict], config: Config, prompt_chars: int = 3000) -> dict:
    """What the same articles would cost through gpt-4o-mini (`hybrid.llm.stats` price) with
    the text cut to `prompt_chars` characters."""
    tokens_in = sum(PROMPT_OVERHEAD_TOKENS + estimate_tokens(
        clean(parse_article(r, config)).lexical_text()[:prompt_chars]) for r in records)
    tokens_out = OUTPUT_TOKENS * len(records)
    dollars = gpt_4o_mini_cost(tokens_in, tokens_out)
    return {"articles": len(records), "input_tokens": tokens_in, "output_tokens": tokens_out,
            "usd": round(dollars, 4),
            "usd_per_100k_articles": round(dollars / len(records) * 1e5, 2)}


def long_posts(records: list[dict], low: int = 4000, high: int = 8000) -> list[dict]:
    """Long posts of the same site: articles of one category joined, in file order, until the
    content reaches `low` characters (at most `high`), under the first one's title and tags."""
    by_category: dict[str, list[dict]] = {}
    for r in records:
        by_category.setdefault((r.get("categories") or [""])[0], []).append(r)
    posts = []
    for group in by_category.values():
        current: list[dict] = []
        for r in group:
            current.append(r)
            content = "\n\n".join(c.get("content") or "" for c in current)
            if len(content) >= low:
                first = current[0]
                posts.append({**first, "id": f"long-{first['id']}", "content": content[:high]})
                current = []
    return posts


def longest_posts(records: list[dict], low: int = REAL_LONG_CHARS) -> list[dict]:
    """A site's own long posts, as written (not joined, not cut)."""
    return [r for r in records if len(r.get("content") or "") >= low]


def taxonomy_file(name: str, work: Path) -> Path:
    """`taxonomies/<name>.json`; if it lists a name twice by key (case, width, spaces: the
    taxonomy loader refuses that, rightly), a copy in `work` that keeps each first, and a
    note that says so. ../shared is never edited."""
    path = SHARED / "taxonomies" / f"{name}.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    kept: dict[str, object] = {}
    for entry in entries:
        kept.setdefault(label_key(entry["name"] if isinstance(entry, dict) else entry), entry)
    if len(kept) == len(entries):
        return path
    copy = work / f"taxonomy-{name}.json"
    copy.write_text(json.dumps(list(kept.values()), ensure_ascii=False), encoding="utf-8")
    print(f"note: {path} lists {len(entries) - len(kept)} names twice by key (the taxonomy "
          f"loader refuses it): training uses a deduplicated copy, {len(kept)} names",
          file=sys.stderr)
    return copy


def write_jsonl(path: Path, records: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def retitled(records: list[dict], repeat: int) -> list[dict]:
    """`repeat` copies, each differing from the others and from the training articles, so no
    article embedding comes from a cache."""
    return [{**r, "title": f"{r.get('title') or ''} #{k + 1}"}
            for k in range(repeat) for r in records]


def cli(tree: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """`hybrid ARGS` run with the code of `tree`: run it in `tree` too, as `-m` puts the
    working folder first on sys.path, before PYTHONPATH (every path given is absolute)."""
    return ([sys.executable, "-m", "hybrid.cli", "--quiet", *args],
            {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"})


def train_model(tree: Path, train_file: Path, taxonomy: Path, out: Path, cache: Path,
                workers: int) -> float:
    """`hybrid train` with `tree`'s code; the seconds its manifest reports."""
    cmd, env = cli(tree, "--cache-dir", str(cache), "train", "--data", str(train_file),
                   "--taxonomy", str(taxonomy), "--out", str(out), "--workers", str(workers),
                   "--json")
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} ({tree}) exited {done.returncode}:\n"
                           f"{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["training"]["seconds"]


def end_to_end(tree: Path, infile: Path, model_dir: Path, workers: int, cache: Path) -> dict:
    """`hybrid tag-file` with `tree`'s code, its output streamed to this process: the wall
    seconds to the first article written (start-up) and to the last, the peak RSS and CPU
    seconds of the process tree, and the 1-minute load average before it started."""
    cmd, env = cli(tree, "--cache-dir", str(cache), "tag-file", str(infile), "-", "--model",
                   str(model_dir), "--workers", str(workers), "--json")
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        first, lines = None, 0
        with PeakRSS(proc.pid) as rss:
            for _ in proc.stdout:
                first = first or time.perf_counter() - started
                lines += 1
            proc.wait()
        seconds = time.perf_counter() - started
        err.seek(0)
        log = err.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} ({tree}) exited {proc.returncode}:\n{log[-2000:]}")
    articles = json.loads(log.strip().splitlines()[-1])["articles"]
    assert articles == lines, f"{articles} articles reported, {lines} lines written"
    return {"articles": articles, "seconds": round(seconds, 2),
            "articles_per_second": round(articles / seconds, 1),
            "first_article_seconds": round(first or seconds, 2),
            "peak_rss_mb": round(rss.peak / 2**20), "cpu_seconds": round(rss.cpu_seconds, 1),
            "load_before": round(load, 2)}


def end_to_end_runs(cases: list[dict], trees: dict[str, Path], models: dict, caches: dict,
                    args: argparse.Namespace, work: Path) -> None:
    """Every case with every tree, the trees alternating, `args.rounds` times: cold (an empty
    cache) and, unless `--speed-only`, warm (a copy of the training cache)."""
    for n in range(args.rounds):
        for case in cases:
            for tree, code in trees.items():
                model = models[tree, case["model"]]
                runs = case.setdefault("end_to_end", {}).setdefault(tree, [])
                cold = work / f"cache-cold-{tree}"
                runs.append(end_to_end(code, case["infile"], model, args.workers, cold))
                shutil.rmtree(cold, ignore_errors=True)
                print(f"round {n + 1}, {case['case']}, {tree}: {runs[-1]}", file=sys.stderr)
                if not args.speed_only:
                    warm = work / f"cache-warm-{tree}"
                    shutil.copytree(caches[tree], warm)
                    case.setdefault("end_to_end_warm", {}).setdefault(tree, []).append(
                        end_to_end(code, case["infile"], model, args.workers, warm))
                    shutil.rmtree(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", type=Path,
                        default=[SHARED / "jiegec.jsonl", SHARED / "oec2003.jsonl"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2,
                        help="Tag each set this many times end to end (amortises start-up).")
    parser.add_argument("--usual-limit", type=int, default=80,
                        help="Held-out articles for the (slow) per-document KeyBERT run.")
    parser.add_argument("--long-posts", action="store_true",
                        help="Join each set's articles of one category into 4-8k-character "
                             "posts, and bench those (train on 80%%, tag all).")
    parser.add_argument("--real", type=Path, default=SHARED / "swiftgg.jsonl",
                        help="Real long posts tagged with the first set's model.")
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="DIR",
                        help="Also run end to end with the code checked out in each DIR "
                             "(named by its folder), each with its own models.")
    parser.add_argument("--rounds", type=int, default=1,
                        help="End-to-end runs per case and tree (the trees alternate).")
    parser.add_argument("--speed-only", action="store_true",
                        help="Only the cold end-to-end runs: no warm runs, stages, quality or "
                             "baselines.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees = {"this": THIS_TREE, **{d.resolve().name: d.resolve() for d in args.compare}}
    if len(trees) != len(args.compare) + 1:
        parser.error("--compare: give each tree once, and folders named apart from 'this'")
    with tempfile.TemporaryDirectory(prefix="hybrid-bench-") as tmp:
        work = Path(tmp)
        config = load_config().with_overrides(cache_dir=str(work / "cache-this"))
        caches = {tree: work / f"cache-{tree}" for tree in trees}
        models, cases, splits = {}, [], {}
        for path in args.data:
            records = load_records([path])
            posts = long_posts(records) if args.long_posts else records
            order = np.random.default_rng(0).permutation(len(posts))
            cut = int(0.8 * len(posts))
            train, test = [posts[i] for i in order[:cut]], [posts[i] for i in order[cut:]]
            splits[path.stem] = (train, test)
            train_file = write_jsonl(work / f"train-{path.stem}.jsonl", train)
            taxonomy = taxonomy_file(path.stem, work)
            seconds = {}
            for tree, code in trees.items():
                models[tree, path.stem] = work / f"model-{tree}-{path.stem}"
                seconds[tree] = train_model(code, train_file, taxonomy, models[tree, path.stem],
                                            caches[tree], args.workers)
            cases.append({"case": path.stem + (" (joined long posts)" if args.long_posts else ""),
                          "records": posts, "model": path.stem, "train_seconds": seconds,
                          "held_out": True})
            cases.append({"case": f"{path.stem}, its posts of ≥ {REAL_LONG_CHARS} chars (real)",
                          "records": longest_posts(records), "model": path.stem})
        first = args.data[0].stem
        cases.insert(0, {"case": f"{args.real.stem} (real long posts, model of {first})",
                         "records": load_records([args.real]), "model": first})
        cases = [c for c in cases if c["records"]]
        for n, case in enumerate(cases):
            case["infile"] = write_jsonl(work / f"tag-{n}.jsonl",
                                         retitled(case["records"], args.repeat))
        end_to_end_runs(cases, trees, models, caches, args, work)
        if not args.speed_only:
            for case in cases:
                model = HybridModel.load(models["this", case["model"]], config=config)
                case["stage_articles_per_second"] = stages(case["records"], model, config)
                if case.get("held_out"):
                    train, test = splits[case["model"]]
                    case.update(held_out_quality=quality(test, model, config),
                                usual_way_keybert=usual_way(test[: args.usual_limit], model,
                                                            config),
                                cheap_way=cheap_way(train, test, model, config),
                                hosted_llm=hosted_llm_cost(case["records"], config))
    results = [{"case": c["case"], "articles": len(c["records"]) * args.repeat,
                "median_content_chars": int(np.median([len(r.get("content") or "")
                                                       for r in c["records"]])),
                **{k: v for k, v in c.items() if k not in ("case", "records", "infile")}}
               for c in cases]
    for r in results:
        r["model"] = str(r["model"])
    if args.json:
        print(json.dumps({"trees": {k: describe(v) for k, v in trees.items()}, "cases": results},
                         ensure_ascii=False, indent=1))
    else:
        print_tables(results, trees)
    print(f"\nmachine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


def describe(tree: Path) -> str:
    """`tree` and its commit, marked when its working files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *args], capture_output=True,
                              text=True).stdout.strip()
    dirty = " + changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{tree} ({git('rev-parse', '--short', 'HEAD') or 'no git'}{dirty})"


def _runs(runs: list[dict], key: str) -> str:
    return " / ".join(str(r[key]) for r in runs)


def print_tables(results: list[dict], trees: dict[str, Path]) -> None:
    print(f"{'case':<48} {'tree':<14} {'articles':>8} {'cold art/s':>14} {'first art.':>11} "
          f"{'warm art/s':>11} {'peak RSS':>9} {'CPU ms/art.':>13} {'CPU/wall':>8} "
          f"{'load':>11}")
    for r in results:
        for tree in trees:
            runs = r["end_to_end"][tree]
            warm = r.get("end_to_end_warm", {}).get(tree, [])
            busy = np.mean([run["cpu_seconds"] / run["seconds"] for run in runs])
            # CPU per article: what the code costs, whatever else the machine was running
            cpu = " / ".join(f"{1000 * run['cpu_seconds'] / run['articles']:.0f}" for run in runs)
            print(f"{r['case'][:48]:<48} {tree:<14} {r['articles']:>8} "
                  f"{_runs(runs, 'articles_per_second'):>14} "
                  f"{_runs(runs, 'first_article_seconds'):>11} "
                  f"{_runs(warm, 'articles_per_second') or '-':>11} "
                  f"{max(run['peak_rss_mb'] for run in runs + warm):>6} MB {cpu:>13} {busy:>8.2f} "
                  f"{_runs(runs, 'load_before'):>11}")
    print("\ntrees: " + ", ".join(f"{k} = {describe(v)}" for k, v in trees.items()))
    staged = [r for r in results if "stage_articles_per_second" in r]
    if not staged:
        return
    names = list(staged[0]["stage_articles_per_second"])
    print(f"\n{'stage articles/s (one process)':<48} " + " ".join(f"{n:>8}" for n in names))
    for r in staged:
        print(f"{r['case'][:48]:<48} " + " ".join(
            f"{r['stage_articles_per_second'][n]:>8}" for n in names))
    print(f"\n{'case':<30} {'method':<34} {'art/s':>7} {'acc@1':>6} {'tagF1@5':>7}")
    for r in results:
        if "held_out_quality" not in r:
            continue
        q, u, c = r["held_out_quality"], r["usual_way_keybert"], r["cheap_way"]
        print(f"{r['case'][:30]:<30} {'ours (tag-file, end to end)':<34} "
              f"{r['end_to_end']['this'][0]['articles_per_second']:>7} "
              f"{q['accuracy_top1']:>6} {q['tag_f1_at_5']:>7}")
        print(f"{'':<30} {'KeyBERT per document (usual way)':<34} {u['articles_per_second']:>7} "
              f"{'-':>6} {u['tag_f1_at_5']:>7}")
        print(f"{'':<30} {'jieba tags + TF-IDF LR (cheap way)':<34} {c['articles_per_second']:>7} "
              f"{c['accuracy_top1']:>6} {c['tag_f1_at_5']:>7}")
        h = r["hosted_llm"]
        print(f"{'':<30} gpt-4o-mini estimate: {h['input_tokens']} in + {h['output_tokens']} "
              f"out tokens = ${h['usd']} (${h['usd_per_100k_articles']} per 100k articles)")


if __name__ == "__main__":
    main()
