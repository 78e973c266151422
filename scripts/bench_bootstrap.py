"""Day one, measured (a benchmark, not a test): how good a model do a few teacher labels buy?

    python scripts/bench_bootstrap.py       # jiegec, oec2003, csl from ../shared/data
    python scripts/bench_bootstrap.py --sets jiegec --budgets 2 5 --seeds 1 --real-llm 0

For each development set, 20% of the articles (with their author labels) are held out; the
other 80% are the "unlabelled" collection of day one. The taxonomy is the set's names with
the descriptions and keywords a site owner would write (scripts/bench_taxonomies/).

1. Zero-shot top-1 on the held-out 20%: cosine to the embedded category name (the
   baseline), our zero-shot model from the names only, and from names + descriptions.
2. A learning curve: `hybrid bootstrap` (the library call) to 2, 5, 10, 20 labels per
   category, choosing at random or actively, taught by a perfect teacher and by one wrong
   with probability 0.2. Both teachers are `hybrid.evaluation.oracle`: an OpenAI-compatible
   server on 127.0.0.1 answering from the held labels, called through the real LLM path.
   For each: top-1 accuracy, label-set macro-F1 and tag F1@5 on the held-out 20%, beside
   the same model trained on all the 80%'s labels; teacher calls, tokens, and their price
   at gpt-4o-mini's list price ($0.15 / $0.60 per 1M tokens).
3. The real local LLM (Qwen2.5-Coder-0.5B through llama.cpp, tests/llm_server.py) as the
   teacher at --real-llm labels per category: its agreement with the author labels, and the
   classifier's top-1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from hybrid.config import load_config
from hybrid.evaluation.crossval import label_matrix
from hybrid.evaluation.metrics import category_metrics, tag_metrics
from hybrid.evaluation.oracle import Oracle, serve
from hybrid.ingest.article import Article
from hybrid.ingest.clean import clean
from hybrid.ingest.records import load_articles
from hybrid.labels.bootstrap import Bootstrap, Outcome
from hybrid.labels.ledger import FileLedger
from hybrid.labels.teacher import LLMTeacher
from hybrid.learn.model import HybridModel
from hybrid.llm.stats import gpt_4o_mini_cost
from hybrid.taxonomy import Taxonomy, load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DESCRIBED = ROOT / "scripts" / "bench_taxonomies"
sys.path.insert(0, str(ROOT / "tests"))
from helpers import fill_in  # noqa: E402

NOISE = 0.2


def split(articles: list[Article], taxonomy: Taxonomy) -> tuple[list[Article], list[Article]]:
    articles = [a for a, y in zip(articles, label_matrix(articles, taxonomy), strict=True)
                if y.any()]
    order = np.random.default_rng(0).permutation(len(articles))
    cut = int(0.8 * len(articles))
    return [articles[i] for i in order[:cut]], [articles[i] for i in order[cut:]]


def score(model: HybridModel, test: list[Article]) -> dict[str, float]:
    predictions = model.predict(test)
    names = model.taxonomy.names
    Y = label_matrix(test, model.taxonomy)
    proba = np.array([[p.scores[n] for n in names] for p in predictions])
    sets = np.array([[int(n in p.categories) for n in names] for p in predictions])
    c = category_metrics(Y, sets, proba, names)
    t = tag_metrics([a.tags for a in test], [p.tags for p in predictions])
    return {"top1": round(c["accuracy_top1"], 3), "label_set_f1": round(c["macro_f1"], 3),
            "tag_f1_at_5": round(t["f1_at_5"], 3)}


def zero_shot(pool: list[Article], test: list[Article], names: Taxonomy, described: Taxonomy,
              config) -> dict[str, float]:
    unlabelled = [replace(a, categories=[], tags=[]) for a in pool]
    out = {}
    model = HybridModel.train(unlabelled, described, config)
    texts = [clean(a) for a in test]
    embeddings = np.vstack([f.embedding for f in model.featurize(texts)])
    name_vectors = model.featurizer.embedder.embed(names.names)
    Y = label_matrix(test, names)
    guess = (embeddings @ name_vectors.T).argmax(axis=1)
    out["name_cosine_baseline"] = round(float(Y[np.arange(len(Y)), guess].mean()), 3)
    out["ours_names_only"] = score(HybridModel.train(unlabelled, names, config), test)["top1"]
    out["ours_with_descriptions"] = score(model, test)["top1"]
    return out


def audited(run: Callable[[Path | None], Outcome], sheet: Path | None,
            gold: dict[str, list[str]]) -> Outcome:
    """`run(sheet)`; when that wrote the audit sheet and waits for a person, the authors'
    labels fill it in, as the person would, and `run(sheet)` again decides."""
    fresh = sheet is not None and not sheet.exists()
    outcome = run(sheet)
    if fresh and sheet.exists():
        fill_in(sheet, gold)
        outcome = run(sheet)
    return outcome


def curve(pool: list[Article], test: list[Article], taxonomy: Taxonomy, config,
          budgets: list[int], strategy: str, noise: float, seed: int, work: Path,
          audit: bool = False) -> list[dict]:
    """One bootstrap, stopped at each budget in turn (the ledger carries the labels on).
    With `audit`, the teacher is checked on an audit sheet the authors' labels fill in."""
    oracle = Oracle(pool, taxonomy, config.llm_article_tokens, noise=noise, seed=seed)
    ledger = FileLedger(work / f"labels-{strategy}-{noise}-{seed}.jsonl")
    sheet = work / f"audit-{strategy}-{noise}-{seed}.csv" if audit else None
    gold = {a.id: a.categories for a in pool}
    unlabelled = [replace(a, categories=[], tags=[]) for a in pool]
    rows = []
    with serve(oracle) as url:
        settings = config.with_overrides(llm_base_url=url,
                                          llm_model=f"oracle-{strategy}-{noise}-{seed}",
                                          llm_max_calls=100_000, llm_backoff=0.01)
        teacher = LLMTeacher(settings, taxonomy)
        for budget in budgets:
            started = time.perf_counter()
            out = work / f"model-{strategy}-{noise}-{seed}"
            outcome = audited(lambda at, b=budget, o=out: Bootstrap(
                unlabelled, taxonomy, settings, ledger, o, b, strategy, seed=seed
            ).run(teacher, audit=at), sheet, gold)
            labels = ledger.labels().values()
            prompt = sum(x.prompt_tokens for x in labels)
            completion = sum(x.completion_tokens for x in labels)
            rows.append({"budget": budget, "strategy": strategy, "noise": noise, "seed": seed,
                         "labels": len(labels), "calls": len(labels),
                         "prompt_tokens": prompt, "completion_tokens": completion,
                         "usd_gpt_4o_mini": round(gpt_4o_mini_cost(prompt, completion), 4),
                         "seconds": round(time.perf_counter() - started, 1),
                         "stopped": outcome.stopped,
                         "teacher_check": outcome.teacher.text() if outcome.teacher else None,
                         **score(HybridModel.load(out, config=config), test)})
            print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr)
        teacher.close()
    return rows


def real_llm(pool: list[Article], test: list[Article], taxonomy: Taxonomy, config,
             per_category: int, work: Path) -> dict:
    from llm_server import find_model, llama_server_available, run_llama_server

    ok, why = llama_server_available()
    if not ok:
        return {"skipped": why}
    ledger = FileLedger(work / "labels-real-llm.jsonl")
    unlabelled = [replace(a, categories=[], tags=[]) for a in pool]
    gold = {a.id: a.categories for a in pool}
    started = time.perf_counter()
    with run_llama_server(find_model(), n_threads=2) as url:
        settings = config.with_overrides(llm_base_url=url, llm_model="qwen2.5-coder-0.5b",
                                          llm_max_calls=100_000, llm_max_output_tokens=60,
                                          llm_article_tokens=300, llm_few_shot=2)
        teacher = LLMTeacher(settings, taxonomy)
        Bootstrap(unlabelled, taxonomy, settings, ledger, work / "model-real-llm",
                  per_category, "active").run(teacher)
        teacher.close()
    labels = list(ledger.labels().values())
    agree = [bool(x.categories) and x.categories[0] in gold[x.id] for x in labels]
    return {"per_category": per_category, "labels": len(labels),
            "empty": sum(not x.categories for x in labels),
            "agreement_top1": round(sum(agree) / max(len(labels), 1), 3),
            "seconds": round(time.perf_counter() - started),
            **score(HybridModel.load(work / "model-real-llm", config=config), test)}


def bench_set(name: str, args: argparse.Namespace, config, work: Path) -> dict:
    names = load_taxonomy(SHARED / "taxonomies" / f"{name}.json")
    described = load_taxonomy(DESCRIBED / f"{name}.json")
    pool, test = split(load_articles(SHARED / f"{name}.jsonl", config), described)
    result: dict = {"set": name, "pool": len(pool), "held_out": len(test),
                    "categories": len(described)}
    result["zero_shot"] = zero_shot(pool, test, names, described, config)
    print(json.dumps(result["zero_shot"]), file=sys.stderr)
    result["all_labels"] = score(HybridModel.train(pool, described, config), test)
    result["curves"] = [row for strategy in ("random", "active") for noise in (0.0, NOISE)
                        for seed in range(args.seeds)
                        for row in curve(pool, test, described, config, args.budgets,
                                         strategy, noise, seed, work / name)]
    if args.real_llm:
        result["real_llm"] = real_llm(pool, test, described, config, args.real_llm,
                                      work / name)
    return result


def summary(results: list[dict], budgets: list[int]) -> str:
    lines = ["zero-shot top-1 on the held-out 20%:",
             f"{'set':<9} {'name cosine':>11} {'ours, names':>11} {'ours, described':>15}"]
    for r in results:
        z = r["zero_shot"]
        lines.append(f"{r['set']:<9} {z['name_cosine_baseline']:>11} {z['ours_names_only']:>11}"
                     f" {z['ours_with_descriptions']:>15}")
    lines += ["", "learning curve (held-out; mean over seeds): top-1 / label-set F1 / tag F1@5",
              f"{'set':<9} {'per cat':>7} {'teacher':>8} {'random':>20} {'active':>20} "
              f"{'calls':>6} {'gpt-4o-mini $':>13}"]
    for r in results:
        for noise in (0.0, NOISE):
            for b in budgets:
                cells = {}
                for strategy in ("random", "active"):
                    rows = [c for c in r["curves"] if c["budget"] == b and c["noise"] == noise
                            and c["strategy"] == strategy]
                    cells[strategy] = " / ".join(
                        f"{statistics.mean(c[k] for c in rows):.3f}"
                        for k in ("top1", "label_set_f1", "tag_f1_at_5"))
                    cost = rows[0]
                lines.append(f"{r['set']:<9} {b:>7} {'perfect' if not noise else '20% noisy':>8} "
                             f"{cells['random']:>20} {cells['active']:>20} {cost['calls']:>6} "
                             f"{cost['usd_gpt_4o_mini']:>13}")
        a = r["all_labels"]
        lines.append(f"{r['set']:<9} {'all':>7} {'authors':>8} {a['top1']:.3f} / "
                     f"{a['label_set_f1']:.3f} / {a['tag_f1_at_5']:.3f} ({r['pool']} labels)")
    for r in results:
        if "real_llm" in r:
            lines.append(f"\nreal local LLM teacher, {r['set']}: {json.dumps(r['real_llm'])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=["jiegec", "oec2003", "csl"])
    parser.add_argument("--budgets", nargs="*", type=int, default=[2, 5, 10, 20])
    parser.add_argument("--seeds", type=int, default=2, help="Runs of each curve, averaged.")
    parser.add_argument("--real-llm", type=int, default=5,
                        help="Labels per category from the local LLM (0: skip).")
    parser.add_argument("--cache-dir", help="Embedding and LLM cache (default: a temp dir).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hybrid-bootstrap-") as tmp:
        work = Path(tmp)
        config = load_config().with_overrides(cache_dir=args.cache_dir or str(work / "cache"))
        results = [bench_set(name, args, config, work) for name in args.sets]
    print(json.dumps(results, ensure_ascii=False, indent=1) if args.json else
          summary(results, args.budgets))


if __name__ == "__main__":
    main()
