"""Throughput benchmark (not a test): `hybrid tag-file` end to end, and each stage alone.

    python scripts/bench.py                       # jiegec + oec2003 from ../shared/data
    python scripts/bench.py --data a.jsonl --repeat 4 --workers 2 --json
    python scripts/bench.py --long-posts          # the same sites as 4-8k-character posts

It trains a model on 80% of the data (unless --model is given), then
  1. runs `hybrid tag-file --workers N` in a subprocess over all articles (repeated --repeat
     times, every copy retitled so no article embedding is cached) and reports articles/s
     and the peak RSS of the whole process tree (sampled), twice: with an empty cache
     (cold) and with the cache the model was trained with (warm: tag candidates seen in
     training are cached, as on the machine that runs the nightly job);
  2. times each stage alone in this process on the same articles: load, clean, embed,
     classify, tag, write;
  3. reports category accuracy and tag F1@5 on the held-out 20%, so speed never hides quality.
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

import numpy as np
import psutil

from hybrid.config import Config, load_config
from hybrid.evaluation.metrics import category_metrics, tag_metrics
from hybrid.ingest.article import parse_article
from hybrid.ingest.clean import clean
from hybrid.ingest.records import read_jsonl
from hybrid.learn.model import HybridModel
from hybrid.llm.prompt import estimate_tokens
from hybrid.llm.stats import gpt_4o_mini_cost
from hybrid.taxonomy import load_taxonomy

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class PeakRSS:
    """Samples the summed RSS of a process and its children until stopped."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
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


def train_model(records: list[dict], taxonomy_path: Path, config: Config, out: Path):
    articles = [parse_article(r, config) for r in records]
    started = time.perf_counter()
    model = HybridModel.train(articles, load_taxonomy(taxonomy_path), config)
    model.save(out)
    return model, time.perf_counter() - started


def end_to_end(infile: Path, model_dir: Path, workers: int, config_args: list[str]) -> dict:
    outfile = infile.with_suffix(".out.jsonl")
    cmd = [sys.executable, "-m", "hybrid.cli", "--quiet", *config_args, "tag-file", str(infile),
           str(outfile), "--model", str(model_dir), "--workers", str(workers), "--json"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    with PeakRSS(proc.pid) as rss:
        stdout, _ = proc.communicate()
    seconds = time.perf_counter() - started
    summary = json.loads(stdout.strip().splitlines()[-1])
    return {"command": " ".join(cmd[2:]), "articles": summary["articles"],
            "seconds": round(seconds, 2),
            "articles_per_second": round(summary["articles"] / seconds, 1),
            "peak_rss_mb": round(rss.peak / 2**20)}


def stages(records: list[dict], model: HybridModel, config: Config) -> dict:
    """Each stage timed alone, in this process, one batch of 64 at a time."""
    timings = dict.fromkeys(["load", "clean", "embed", "classify", "tag", "write"], 0.0)
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
        timings["load"] += t1 - t0
        timings["clean"] += t2 - t1
        timings["embed"] += t3 - t2
        # featurize = embed (cached) + words + candidates: the segmentation goes to its users
        timings["classify"] += (t4 - t3) / 2 + (t5 - t4)
        timings["tag"] += (t4 - t3) / 2 + (t6 - t5)
        timings["write"] += t7 - t6
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


def bench_set(path: Path, args: argparse.Namespace, config: Config, work: Path) -> dict:
    records = load_records([path])
    if args.long_posts:
        records = long_posts(records)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(records))
    cut = int(0.8 * len(records))
    train, test = [records[i] for i in order[:cut]], [records[i] for i in order[cut:]]
    if args.model:
        model_dir = Path(args.model)
        model = HybridModel.load(model_dir, config=config)
        train_seconds = None
    else:
        model_dir = work / f"model-{path.stem}"
        model, train_seconds = train_model(train, SHARED / "taxonomies" / f"{path.stem}.json",
                                           config, model_dir)
        model = HybridModel.load(model_dir, config=config)
    infile = work / f"{path.stem}-tag.jsonl"
    with infile.open("w", encoding="utf-8") as fh:
        for k in range(args.repeat):
            for r in records:
                # each copy differs from the others and from the training articles, so no
                # article embedding comes from a cache
                copy = {**r, "title": f"{r.get('title') or ''} #{k + 1}"}
                fh.write(json.dumps(copy, ensure_ascii=False) + "\n")
    # cold: an empty cache, the run pays for every embedding, tag candidates included (a
    # fresh machine); warm: the cache the model was trained with, as where the nightly job
    # runs: candidate words seen in training are cached, the articles are still new
    cold = ["--cache-dir", str(work / f"cache-e2e-{path.stem}")]
    warm = ["--cache-dir", config.cache_dir]
    return {"set": path.stem + (" (long posts)" if args.long_posts else ""),
            "articles": len(records) * args.repeat,
            "median_content_chars": int(np.median([len(r.get("content") or "")
                                                   for r in records])),
            "train_seconds": round(train_seconds, 1) if train_seconds else None,
            "end_to_end": end_to_end(infile, model_dir, args.workers, cold),
            "end_to_end_warm_words": end_to_end(infile, model_dir, args.workers, warm),
            "stage_articles_per_second": stages(records, model, config),
            "held_out_quality": quality(test, model, config),
            "usual_way_keybert": usual_way(test[: args.usual_limit], model, config),
            "cheap_way": cheap_way(train, test, model, config),
            "hosted_llm": hosted_llm_cost(records, config)}


def print_table(results: list[dict]) -> None:
    print(f"{'set':<10} {'articles':>8} {'e2e art/s':>9} {'warm':>6} {'peak RSS':>9} "
          f"{'load':>7} {'clean':>7} {'embed':>7} {'classify':>8} {'tag':>7} {'write':>8} "
          f"{'acc@1':>6} {'tagF1@5':>7}")
    for r in results:
        s, e, q = r["stage_articles_per_second"], r["end_to_end"], r["held_out_quality"]
        w = r["end_to_end_warm_words"]
        print(f"{r['set']:<10} {r['articles']:>8} {e['articles_per_second']:>9} "
              f"{w['articles_per_second']:>6} {max(e['peak_rss_mb'], w['peak_rss_mb']):>6} MB "
              f"{s['load']:>7} {s['clean']:>7} {s['embed']:>7} "
              f"{s['classify']:>8} {s['tag']:>7} {s['write']:>8} "
              f"{q['accuracy_top1']:>6} {q['tag_f1_at_5']:>7}")
    print("\nend-to-end command:", results[0]["end_to_end"]["command"] if results else "")
    print(f"\n{'set':<10} {'method':<34} {'art/s':>7} {'acc@1':>6} {'tagF1@5':>7}")
    for r in results:
        q, u, c = r["held_out_quality"], r["usual_way_keybert"], r["cheap_way"]
        print(f"{r['set']:<10} {'ours (tag-file, end to end)':<34} "
              f"{r['end_to_end']['articles_per_second']:>7} {q['accuracy_top1']:>6} "
              f"{q['tag_f1_at_5']:>7}")
        print(f"{'':<10} {'KeyBERT per document (usual way)':<34} {u['articles_per_second']:>7} "
              f"{'-':>6} {u['tag_f1_at_5']:>7}")
        print(f"{'':<10} {'jieba tags + TF-IDF LR (cheap way)':<34} {c['articles_per_second']:>7} "
              f"{c['accuracy_top1']:>6} {c['tag_f1_at_5']:>7}")
        h = r["hosted_llm"]
        print(f"{'':<10} gpt-4o-mini estimate: {h['input_tokens']} in + {h['output_tokens']} out "
              f"tokens = ${h['usd']} (${h['usd_per_100k_articles']} per 100k articles)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", type=Path,
                        default=[SHARED / "jiegec.jsonl", SHARED / "oec2003.jsonl"])
    parser.add_argument("--model", help="Use this model instead of training one per set.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2,
                        help="Tag each set this many times end to end (amortises start-up).")
    parser.add_argument("--cache-dir", help="Embedding cache for training (default: a temp dir); "
                                            "the end-to-end run always starts cold.")
    parser.add_argument("--usual-limit", type=int, default=80,
                        help="Held-out articles for the (slow) per-document KeyBERT run.")
    parser.add_argument("--long-posts", action="store_true",
                        help="Join each set's articles of one category into 4-8k-character "
                             "posts, and bench those (train on 80%%, tag all).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hybrid-bench-") as tmp:
        work = Path(tmp)
        config = load_config().with_overrides(cache_dir=args.cache_dir or str(work / "cache"))
        results = [bench_set(path, args, config, work) for path in args.data]
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        print_table(results)
    print(f"\nmachine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
