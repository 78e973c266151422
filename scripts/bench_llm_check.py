"""An LLM earns its place, measured (a benchmark, not a test): `hybrid llm check` and the
checked fallback, and the teacher check of `hybrid bootstrap`, with four LLMs through the
real LLM path on jiegec, oec2003 and csl.

    python scripts/bench_llm_check.py --cache-dir C             # everything (hours: the 0.5B)
    python scripts/bench_llm_check.py --sets jiegec --teachers perfect noisy20 --parts fallback

The LLMs: the gold-label server (`hybrid.evaluation.oracle`, on 127.0.0.1) perfect, and wrong
on 20% and 50% of the articles (the same wrong answer every time for an article); the bundled
Qwen2.5-Coder-0.5B through llama.cpp (tests/llm_server.py, 2 threads).

1. Fallback, 5-fold out of fold. For each outer fold a model is trained on the other four
   (as `hybrid train` would), and `check_llm` measures each LLM as its fallback on those
   articles (predicted out of fold by five more models, shared by the LLMs), with a budget
   of requests: `--budget-share` of them for the oracles, `--qwen-budget` for the 0.5B (it
   takes 20-60 s an article on 2 shared cores). Then the fold's own articles go through the
   fallback as `run` and `tag-file` send them: `fallback_policy` (refused without a passing
   check; else the check's threshold and top k), then `LLMRefiner`. Top-1 over the pooled
   folds, with and without, beside today's routing gain at 10% on the same predictions
   (`hybrid.evaluation.routing.ceiling`: the perfect teacher answering the least confident
   10%, every answer applied). The check's cost: what it printed before its first request
   (the oracle counts requests, so "before" is checked), and its requests against the budget.
2. Bootstrap, split as scripts/bench_bootstrap.py splits (80% unlabelled, 20% held out,
   described taxonomies), active choice, seed 0: the oracles at 2, 5, 10 labels per category
   (csl 2, 5), beside today's code (`--today`, main's checkout, run as a subprocess on the
   same cache): stopped or not, and the learning curve. The 0.5B at 5 per category with
   bench_bootstrap's settings for it: stopped after the first round or not, the estimate,
   the budget left unspent, the model kept and its held-out top-1. With `--audit`, every
   teacher is checked by `--audit`'s sheet instead of the estimate without gold labels: the
   authors' labels fill the 20 articles in, as the person would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.config import Config, load_config
from hybrid.errors import HybridError, UsageError
from hybrid.evaluation import routing
from hybrid.evaluation.crossval import cv_folds, label_matrix
from hybrid.evaluation.oracle import Oracle, serve
from hybrid.ingest.article import Article
from hybrid.ingest.records import load_articles
from hybrid.labels.bootstrap import Bootstrap
from hybrid.labels.ledger import FileLedger
from hybrid.labels.teacher import LLMTeacher
from hybrid.learn.model import HybridModel
from hybrid.llm.check.gate import fallback_policy
from hybrid.llm.check.job import check_llm, predicted_for
from hybrid.llm.refine import LLMRefiner
from hybrid.taxonomy import Taxonomy, load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))
from bench_bootstrap import DESCRIBED, SHARED, audited, curve, score, split  # noqa: E402

ORACLES = {"perfect": 0.0, "noisy20": 0.2, "noisy50": 0.5}
QWEN = "qwen2.5-coder-0.5b"
# bench_bootstrap.py's settings for the 0.5B (a short article, a short answer), and time
# enough for an answer on a loaded 2-core machine
QWEN_SETTINGS = {"llm_article_tokens": 300, "llm_max_output_tokens": 60, "llm_few_shot": 2,
                 "llm_timeout": 300.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def labelled(name: str, taxonomy: Taxonomy, config: Config) -> list[Article]:
    articles = load_articles(SHARED / f"{name}.jsonl", config)
    return [a for a, y in zip(articles, label_matrix(articles, taxonomy), strict=True)
            if y.any()]


class Teachers:
    """One server per LLM, for the whole run: the oracles answer from `articles`."""

    def __init__(self, names: list[str], articles: list[Article], taxonomy: Taxonomy,
                 config: Config, qwen_url: str | None, stack: Any) -> None:
        self.oracles: dict[str, Oracle] = {}
        self.urls: dict[str, str] = {}
        for name in names:
            if name in ORACLES:
                oracle = Oracle(articles, taxonomy, config.llm_article_tokens, ORACLES[name])
                self.oracles[name] = oracle
                self.urls[name] = stack.enter_context(serve(oracle))
            elif qwen_url:
                self.urls[name] = qwen_url

    def settings(self, name: str, config: Config) -> Config:
        extra = QWEN_SETTINGS if name == "qwen" else {}
        return config.with_overrides(llm_base_url=self.urls[name], llm_model=model_name(name),
                                     llm_backoff=0.01 if name != "qwen" else None, **extra)

    def requests(self, name: str) -> int | None:
        return self.oracles[name].calls if name in self.oracles else None


def model_name(teacher: str) -> str:
    return QWEN if teacher == "qwen" else f"gold-{teacher}"


def fallback(name: str, args: argparse.Namespace, config: Config, work: Path,
             qwen_url: str | None) -> dict[str, Any]:
    taxonomy = load_taxonomy(SHARED / "taxonomies" / f"{name}.json")
    articles = labelled(name, taxonomy, config)
    gold = [taxonomy.map_labels(a.categories)[0] for a in articles]
    n = len(articles)
    alone: list[Any] = [None] * n
    served = {t: [None] * n for t in args.teachers}
    checks: dict[str, list[dict]] = {t: [] for t in args.teachers}
    embedder = HybridModel.embedder_for(config)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        teachers = Teachers(args.teachers, articles, taxonomy, config, qwen_url, stack)
        for fold, (train, test) in enumerate(cv_folds(label_matrix(articles, taxonomy),
                                                      args.folds, 0)):
            trained = [articles[i] for i in train]
            model_dir = work / name / f"fold-{fold}"
            model = HybridModel.train(trained, taxonomy, config, embedder=embedder)
            model.save(model_dir)
            predictions = model.predict([articles[i] for i in test])
            for i, p in zip(test, predictions, strict=True):
                alone[i] = p
            log(f"{name} fold {fold}: predicting its {len(trained)} training articles out of "
                "fold for the checks")
            predicted = predicted_for(model, trained, config, args.folds, 0)
            for teacher in args.teachers:
                if teacher not in teachers.urls:
                    continue
                settings = teachers.settings(teacher, config)
                budget = (args.qwen_budget if teacher == "qwen"
                          else round(args.budget_share * len(trained)))
                before, printed = teachers.requests(teacher), []

                def announce(text: str, t: str = teacher, seen: list = printed) -> None:
                    seen.append((text, teachers.requests(t)))

                try:
                    result = check_llm(model_dir, settings, trained, name, budget, args.folds,
                                       predicted=predicted, announce=announce)
                except HybridError as exc:  # no answer at all: nothing kept, so refused
                    log(f"{name} fold {fold} {teacher}: {exc}")
                    checks[teacher].append({"fold": fold, "budget": budget, "requests": budget,
                                            "printed_first": bool(printed), "use": False,
                                            "error": str(exc)})
                    result = None
                else:
                    rec = result.recommendation
                    checks[teacher].append({
                        "fold": fold, "budget": budget, "requests": result.calls,
                        "printed_first": len(printed) == 1 and printed[0][1] == before,
                        "estimate": printed[0][0] if printed else None,
                        "llm_accuracy": result.llm_accuracy.value,
                        "classifier_accuracy": result.classifier_accuracy.value,
                        "answered": result.answered, "use": rec.use,
                        "threshold": rec.threshold, "top_k": rec.top_k,
                        "gain": rec.gain.value if rec.gain else None})
                    log(f"{name} fold {fold} {teacher}: {result.summary()}")
                run = settings.with_overrides(llm_mode="fallback")
                items = [(articles[i], None, p) for i, p in zip(test, predictions, strict=True)]
                try:
                    policy = fallback_policy(run, model_dir)
                except UsageError:
                    out = predictions  # refused: the classifier's answers
                else:
                    with LLMRefiner(run, taxonomy, model, policy=policy) as refiner:
                        out = refiner.refine(items)
                    checks[teacher][-1]["fallback"] = refiner.stats.as_dict()
                for i, p in zip(test, out, strict=True):
                    served[teacher][i] = p
    base = routing.top1_accuracy(alone, gold)
    ceiling = routing.ceiling(articles, alone, taxonomy, config, shares=(0.1,))[0]
    today = ceiling["lowest_confidence"] - ceiling["accuracy"]
    rows = {}
    for teacher in args.teachers:
        if not checks[teacher]:
            continue
        top1 = routing.top1_accuracy(served[teacher], gold)
        rows[teacher] = {
            "top1_alone": round(base, 4), "top1_fallback": round(top1, 4),
            "gain": round(top1 - base, 4),
            "share_of_todays_gain": round((top1 - base) / today, 3) if today > 0 else None,
            "checks_passed": sum(c["use"] for c in checks[teacher]),
            "printed_first": all(c["printed_first"] for c in checks[teacher]
                                 if teacher != "qwen"),
            "max_requests_over_budget": max(c["requests"] - c["budget"]
                                            for c in checks[teacher]),
            "requests": sum(c["requests"] for c in checks[teacher]),
            "checks": checks[teacher]}
    return {"set": name, "articles": n, "folds": args.folds,
            "todays_gain_at_10": round(today, 4), "ceiling": ceiling,
            "seconds": round(time.perf_counter() - started), "teachers": rows}


TODAY = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/scripts")
from bench_bootstrap import DESCRIBED, SHARED, curve, split
from hybrid.config import load_config
from hybrid.ingest.records import load_articles
from hybrid.taxonomy import load_taxonomy
name, cache, work, budgets = sys.argv[2], sys.argv[3], Path(sys.argv[4]), json.loads(sys.argv[5])
config = load_config().with_overrides(cache_dir=cache)
described = load_taxonomy(DESCRIBED / f"{name}.json")
pool, test = split(load_articles(SHARED / f"{name}.jsonl", config), described)
print(json.dumps([row for noise in (0.0, 0.2)
                  for row in curve(pool, test, described, config, budgets, "active", noise, 0,
                                   work)]))
"""


def today_curves(name: str, args: argparse.Namespace, budgets: list[int], work: Path
                 ) -> list[dict]:
    """The same active curves (seed 0) with today's code: bench_bootstrap's `curve` from a
    checkout of main, in a process of its own, on the same cache."""
    if not args.today:
        return []
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", TODAY, str(args.today), name, args.cache_dir, str(work),
           json.dumps(budgets)]
    env = {**os.environ, "PYTHONPATH": str(args.today)}
    # in `work`: `python -c` puts the working directory first on sys.path, and from this
    # tree's root that would import this tree's `hybrid`, not today's
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=6 * 3600,
                          check=True, cwd=work)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bootstrap_part(name: str, args: argparse.Namespace, config: Config, work: Path,
                   qwen_url: str | None) -> dict[str, Any]:
    described = load_taxonomy(DESCRIBED / f"{name}.json")
    pool, test = split(load_articles(SHARED / f"{name}.jsonl", config), described)
    budgets = [2, 5] if name == "csl" else [2, 5, 10]
    out: dict[str, Any] = {"set": name, "pool": len(pool), "held_out": len(test)}
    for teacher in (t for t in args.teachers if t in ("perfect", "noisy20")):
        rows = curve(pool, test, described, config, budgets, "active", ORACLES[teacher], 0,
                     work / name, args.audit)
        out[teacher] = [{k: r[k] for k in ("budget", "labels", "stopped", "teacher_check",
                                           "top1", "label_set_f1", "tag_f1_at_5")}
                        for r in rows]
    if any(t in args.teachers for t in ("perfect", "noisy20")):
        out["today"] = [{k: r[k] for k in ("budget", "noise", "labels", "top1",
                                           "label_set_f1", "tag_f1_at_5")}
                        for r in today_curves(name, args, budgets, work / "today" / name)]
    if "qwen" in args.teachers and qwen_url:
        out["qwen"] = qwen_bootstrap(pool, test, described, config, work / name, qwen_url,
                                     args.audit)
    return out


def qwen_bootstrap(pool: list[Article], test: list[Article], taxonomy: Taxonomy,
                   config: Config, work: Path, url: str, audit: bool) -> dict[str, Any]:
    ledger = FileLedger(work / "labels-qwen.jsonl")
    unlabelled = [replace(a, categories=[], tags=[]) for a in pool]
    gold = {a.id: a.categories for a in pool}
    settings = config.with_overrides(llm_base_url=url, llm_model=QWEN, llm_max_calls=100_000,
                                      **QWEN_SETTINGS)
    started = time.perf_counter()
    teacher = LLMTeacher(settings, taxonomy)
    outcome = audited(lambda at: Bootstrap(unlabelled, taxonomy, settings, ledger,
                                           work / "model-qwen", 5, "active", progress=log
                                           ).run(teacher, audit=at),
                      work / "audit-qwen.csv" if audit else None, gold)
    teacher.close()
    labels = list(ledger.labels().values())
    agree = [bool(x.categories) and x.categories[0] in gold[x.id] for x in labels]
    kept = HybridModel.load(work / "model-qwen", config=config)
    return {"per_category": 5, "first_round": 2 * len(taxonomy), "labels": len(labels),
            "budget": 5 * len(taxonomy), "stopped": outcome.stopped,
            "rounds": len(outcome.rounds),
            "teacher_check": outcome.teacher.text() if outcome.teacher else None,
            "estimate": {"teacher": outcome.teacher.teacher.__dict__,
                         "zero_shot": outcome.teacher.zero_shot.__dict__}
            if outcome.teacher else None,
            "true_agreement_top1": round(float(np.mean(agree)), 3) if agree else None,
            "kept_zero_shot": kept.zero_shot, "seconds": round(time.perf_counter() - started),
            **{f"kept_{k}": v for k, v in score(kept, test).items()}}


def table(results: list[dict]) -> str:
    lines = ["| set | teacher | measure | required | measured |", "|---|---|---|---|---|"]
    for r in results:
        f = r.get("fallback")
        for teacher, t in (f["teachers"].items() if f else []):
            lines.append(f"| {r['set']} | {teacher} | top-1 with fallback (5-fold OOF) | ≥ "
                         f"classifier alone {t['top1_alone']:.3f} | {t['top1_fallback']:.3f} "
                         f"({100 * t['gain']:+.1f} pts; check passed {t['checks_passed']}/"
                         f"{len(t['checks'])} folds) |")
            if teacher in ("perfect", "noisy20"):
                lines.append(f"| {r['set']} | {teacher} | top-1 gain vs today's routing gain at "
                             f"10% ({100 * f['todays_gain_at_10']:+.1f} pts) | ≥ 80% | "
                             f"{t['share_of_todays_gain']:.0%} |")
            printed = ("printed first in every check" if teacher != "qwen" else
                       "printed before the requests (code order; llama.cpp counts none)")
            lines.append(f"| {r['set']} | {teacher} | check's cost | printed before any call; "
                         f"≤ budget | {printed}; requests − budget ≤ "
                         f"{t['max_requests_over_budget']} (budget "
                         f"{t['checks'][0]['budget']} a check) |")
        b = r.get("bootstrap")
        for teacher in ("perfect", "noisy20"):
            if b and teacher in b:
                stops = [row["budget"] for row in b[teacher] if row["stopped"]]
                verdict = f"stopped at {stops}" if stops else "not stopped"
                ours = " / ".join(f"{row['top1']:.3f}" for row in b[teacher])
                today = " / ".join(f"{row['top1']:.3f}" for row in b.get("today", [])
                                   if row["noise"] == ORACLES[teacher])
                lines.append(f"| {r['set']} | {teacher} | bootstrap (active, per category "
                             f"{'/'.join(str(row['budget']) for row in b[teacher])}) | not "
                             f"stopped, today's curve | {verdict}; "
                             f"top-1 {ours} (today {today or 'not run'}) |")
        if b and "qwen" in b:
            q = b["qwen"]
            lines.append(f"| {r['set']} | qwen | bootstrap (5 per category) | stopped after "
                         f"round 1, estimate shown, zero-shot kept | "
                         f"{'stopped' if q['stopped'] else 'NOT stopped'} after "
                         f"{q['labels']}/{q['budget']} labels; {q['teacher_check']}; "
                         f"zero-shot kept: {q['kept_zero_shot']} (held-out top-1 "
                         f"{q['kept_top1']:.3f}; its labels' true top-1 "
                         f"{q['true_agreement_top1']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=["jiegec", "oec2003", "csl"])
    parser.add_argument("--teachers", nargs="*", default=[*ORACLES, "qwen"],
                        choices=[*ORACLES, "qwen"])
    parser.add_argument("--parts", nargs="*", default=["fallback", "bootstrap"],
                        choices=["fallback", "bootstrap"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--budget-share", type=float, default=0.25,
                        help="The oracles' check budget: this share of the articles.")
    parser.add_argument("--qwen-budget", type=int, default=10,
                        help="The 0.5B's check budget, in requests.")
    parser.add_argument("--today", default="/work/main" if Path("/work/main").is_dir() else None,
                        help="A checkout of today's code, for the bootstrap curves beside.")
    parser.add_argument("--audit", action="store_true",
                        help="Check the bootstrap's teachers by an audit sheet that the "
                             "authors' labels fill in, not by the estimate without gold.")
    parser.add_argument("--cache-dir", help="Embedding and LLM cache (default: a temp dir).")
    parser.add_argument("--out", help="Also write the results as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hybrid-llm-check-") as tmp, \
            contextlib.ExitStack() as stack:
        work = Path(tmp)
        args.cache_dir = args.cache_dir or str(work / "cache")
        config = load_config().with_overrides(cache_dir=args.cache_dir)
        qwen_url = None
        if "qwen" in args.teachers:
            from llm_server import find_model, llama_server_available, run_llama_server

            ok, why = llama_server_available()
            if ok:
                qwen_url = stack.enter_context(run_llama_server(find_model(), n_threads=2))
            else:
                log(f"the 0.5B is skipped: {why}")
        results = []
        for name in args.sets:
            result: dict[str, Any] = {"set": name}
            if "fallback" in args.parts:
                result["fallback"] = fallback(name, args, config, work, qwen_url)
                log(json.dumps({k: v for k, v in result["fallback"].items()
                                if k != "teachers"}))
            if "bootstrap" in args.parts:
                result["bootstrap"] = bootstrap_part(name, args, config, work, qwen_url)
            results.append(result)
            if args.out:
                Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1,
                                                     default=str), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
