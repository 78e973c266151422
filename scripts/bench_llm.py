"""Classifier alone vs classifier + LLM on its lowest-confidence 10% / 20% of a dev split.

    python scripts/bench_llm.py --data ../shared/data/oec2003.jsonl \
        --taxonomy ../shared/data/taxonomies/oec2003.json [--fractions 0.1 0.2] [--out r.json]

Starts the local llama.cpp server from tests/llm_server.py (GGUF from scripts/setup_llm.sh)
unless --base-url points at a running OpenAI-compatible server (key from $HYBRID_LLM_API_KEY).
Each setting gets a fresh LLM cache, so calls and time are what a first run pays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from hybrid.config import load_config
from hybrid.evaluation.metrics import category_metrics
from hybrid.ingest.clean import clean
from hybrid.ingest.records import load_articles
from hybrid.learn.model import HybridModel
from hybrid.llm.refine import LLMRefiner, training_examples
from hybrid.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]


def score(gold: list[list[str]], answers: list[list[str]], names: list[str]) -> dict:
    """Shared metrics; an answer's order stands in for probabilities (first = top-1)."""
    Y = np.array([[int(n in g) for n in names] for g in gold])
    P = np.array([[int(n in a) for n in names] for a in answers])
    rank = np.array([[(len(a) - a.index(n)) if n in a else 0 for n in names] for a in answers])
    m = category_metrics(Y, P, rank.astype(float), names)
    return {k: round(m[k], 4) for k in ("accuracy_top1", "micro_f1", "macro_f1_top1")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--taxonomy", required=True)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base-url", help="use this server instead of starting llama.cpp")
    ap.add_argument("--llm-model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", help="write the report as JSON")
    args = ap.parse_args()

    base = load_config()
    taxonomy = load_taxonomy(args.taxonomy)
    articles = [a for a in load_articles(args.data, base) if taxonomy.map_labels(a.categories)[0]]
    first = [taxonomy.map_labels(a.categories)[0][0] for a in articles]
    counts = Counter(first)  # stratify by first category; singletons join the largest
    strata = [f if counts[f] > 1 else counts.most_common(1)[0][0] for f in first]
    train, test = train_test_split(articles, test_size=args.test_size, random_state=args.seed,
                                   stratify=strata)
    started = time.perf_counter()
    model = HybridModel.train(train, taxonomy, base)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    preds = model.predict(test)
    classify_s = time.perf_counter() - started
    gold = [taxonomy.map_labels(a.categories)[0] for a in test]
    order = np.argsort([p.confidence for p in preds], kind="stable")
    examples = training_examples(model)
    rows = [{"setting": "classifier alone", **score(gold, [p.categories for p in preds],
                                                     taxonomy.names),
             "llm_articles": 0, "calls": 0, "tokens": 0, "llm_seconds": 0.0,
             "seconds": round(classify_s, 1)}]

    with contextlib.ExitStack() as stack:
        url = args.base_url
        if url is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from llm_server import find_model, llama_server_available, run_llama_server

            ok, why = llama_server_available()
            if not ok:
                sys.exit(f"bench_llm: {why}")
            url = stack.enter_context(run_llama_server(find_model(), n_threads=args.threads))
        for fraction in args.fractions:
            k = max(1, round(fraction * len(test)))
            chosen = [int(i) for i in order[:k]]
            with tempfile.TemporaryDirectory() as cache:
                # a fresh LLM cache; the model keeps its own (warm) embedding cache
                config = replace(base, cache_dir=cache, llm_mode="fallback", llm_base_url=url,
                                 llm_model=args.llm_model, llm_threshold=1.01)
                with LLMRefiner(config, taxonomy, model, examples) as refiner:
                    refined = refiner.refine([(test[i], clean(test[i]), preds[i])
                                              for i in chosen])
                stats = refiner.stats
            answers = [p.categories for p in preds]
            for i, p in zip(chosen, refined, strict=True):
                answers[i] = p.categories
            sub_before = score([gold[i] for i in chosen], [preds[i].categories for i in chosen],
                               taxonomy.names)
            sub_after = score([gold[i] for i in chosen], [p.categories for p in refined],
                              taxonomy.names)
            agree = sum(p.categories[:1] == preds[i].categories[:1]
                        for i, p in zip(chosen, refined, strict=True) if p.source == "llm")
            rows.append({
                "setting": f"classifier + LLM on lowest {fraction:.0%}",
                **score(gold, answers, taxonomy.names),
                "llm_articles": k, "calls": stats.calls,
                "tokens": stats.prompt_tokens + stats.completion_tokens,
                "llm_seconds": round(stats.seconds, 1),
                "seconds": round(classify_s + stats.seconds, 1),
                "subset_accuracy_classifier": sub_before["accuracy_top1"],
                "subset_accuracy_llm": sub_after["accuracy_top1"],
                "llm_applied": stats.applied, "llm_errors": stats.errors,
                "blocked": stats.blocked, "llm_top1_same_as_classifier": agree,
            })

    report = {"data": args.data, "train": len(train), "test": len(test),
              "train_seconds": round(train_s, 1), "llm_model": args.llm_model,
              "threads": args.threads, "rows": rows}
    print(json.dumps(report, ensure_ascii=False, indent=1))
    print("\n| setting | acc@1 | micro-F1 | LLM articles | calls | tokens | time (s) "
          "| subset acc@1 classifier → LLM |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        subset = (f"{r['subset_accuracy_classifier']:.3f} → {r['subset_accuracy_llm']:.3f}"
                  if "subset_accuracy_llm" in r else "")
        print(f"| {r['setting']} | {r['accuracy_top1']:.3f} | {r['micro_f1']:.3f} | "
              f"{r['llm_articles']} | {r['calls']} | {r['tokens']} | {r['seconds']} | {subset} |")
    if args.out:
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
