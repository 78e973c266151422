"""Hide categories and see them come back: the measurement of `hybrid taxonomy suggest`
(not a test).

    python scripts/bench_suggest.py                      # everything: 3 sets x 5 seeds,
                                                         # the merges, the 10k timing
    python scripts/bench_suggest.py --sets jiegec --seeds 1 --no-joined --no-timing
    python scripts/bench_suggest.py --sheet /work/notes/sheets/names/sheet.md \\
        --key /work/notes/keys/names/key.json           # and the blind sheet of names
    python scripts/bench_suggest.py --runs OUT --sheet SHEET --key KEY  # a sheet from --out
    python scripts/bench_suggest.py --score-names KEY VERDICTS   # the judge's names score

For each dev set of ../shared/data and each seed:
  1. hide k categories: 20% of the list (at least 2), drawn among those with at least 15
     articles; remove them from the list and their labels from the articles (an article
     left without a label is unlabelled);
  2. train on the rest (the model is kept in --work and reused by a later run);
  3. run `suggest` over the whole set, and match every proposed new category to the hidden
     ones: a hidden category is RECOVERED when one proposal's articles are at least 60% that
     category and cover at least 50% of it (every hidden category is checked, not only the
     one the proposal holds most of); a proposal at least 60% one hidden category but
     covering less is PARTIAL; any other proposal is JUNK;
  4. beside it, in the same run, a BERTopic-style baseline: HDBSCAN over the sentence
     embeddings of all articles (as given, and laid out by t-SNE first, standing in for
     BERTopic's UMAP), each cluster named by class-based TF-IDF, matched the same way; a
     cluster mostly of one category still on the list is a KNOWN topic, not junk.
Joined (merges experiment): two categories with at least 15 articles each are put under one
name ("A+B"); after training, does a proposal bring either back (the same 60% / 50% rule)?
Timing: 10,000 articles (copies of the three sets, perturbed as in bench_scale.py) with 20%
of the categories hidden; a model trained on them (its embeddings cached), then
`hybrid taxonomy suggest` timed in a fresh process: wall and CPU seconds, peak RSS, and the
load average around it (other work on the 2 cores stretches the wall clock).

Nothing is tuned per set: the settings are the defaults (`hybrid.config`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mongo import SHARED, timed
from bench_scale import write_set

from hybrid.batch.processes import one_thread_per_process
from hybrid.config import Config
from hybrid.ingest.article import Article
from hybrid.ingest.records import load_articles
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import parse_taxonomy
from hybrid.taxonomy.suggest import suggest
from hybrid.taxonomy.suggest.articles import Articles
from hybrid.taxonomy.suggest.corpus import read_corpus
from hybrid.taxonomy.suggest.run import min_size
from hybrid.taxonomy.suggest.terms import distinctive_terms

SETS = ("jiegec", "oec2003", "csl")
HIDDEN_SHARE, MIN_HIDDEN, MIN_ARTICLES = 0.2, 2, 15
PURITY, COVERAGE = 0.6, 0.5
STATUSES = ("recovered", "partial", "junk", "known")


def entries(name: str) -> list[dict[str, Any]]:
    """A set's category list as its file has it (checked: the loader must accept it)."""
    path = SHARED / "taxonomies" / f"{name}.json"
    data = json.loads(path.read_text("utf-8"))
    parse_taxonomy(data, source=str(path))
    return data


def to_hide(counts: Counter, listed: list[dict[str, Any]], seed: int,
            k: int | None = None) -> list[str]:
    """k categories of the list (20% of it, at least 2), among those with enough articles."""
    eligible = sorted(e["name"] for e in listed if counts[e["name"]] >= MIN_ARTICLES)
    k = k or max(MIN_HIDDEN, round(HIDDEN_SHARE * len(listed)))
    return sorted(random.Random(seed).sample(eligible, min(k, len(eligible))))


def without(articles: list[Article], hidden: set[str]) -> list[Article]:
    return [replace(a, categories=[c for c in a.categories if c not in hidden])
            for a in articles]


def trained(work: Path, articles: list[Article], listed: list[dict[str, Any]],
            config: Config) -> HybridModel:
    """The model for this list and these labels, from `work` when a run trained it before."""
    taxonomy = parse_taxonomy(listed)
    key = json.dumps([taxonomy.fingerprint, [a.categories for a in articles]])
    if (work / "model").exists() and (work / "key.json").exists() and \
            (work / "key.json").read_text("utf-8") == key:
        return HybridModel.load(work / "model", config=config)
    model = HybridModel.train(articles, taxonomy, config)
    model.save(work / "model")
    (work / "key.json").write_text(key, "utf-8")
    return HybridModel.load(work / "model", config=config)


def match(groups: list[list[str]], gold: dict[str, list[str]], hidden: list[str],
          listed: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """Each group's status and the hidden categories recovered. A group recovers every hidden
    category it is at least 60% of and covers at least 50% of (the issue's rule: on a
    two-level list a group can be 100% of a field and of its discipline at once, and only
    the discipline may be covered). Its `best` is a category it recovers, else the hidden
    one it holds most of."""
    size = Counter(c for cats in gold.values() for c in cats)
    rows, recovered = [], set()
    for ids in groups:
        counts = Counter(c for i in ids for c in gold[i])
        pure = [h for h in hidden if counts[h] >= PURITY * len(ids)]
        hits = [h for h in pure if counts[h] >= COVERAGE * size[h]]
        best = (max(hits or pure, key=lambda h: (counts[h] / size[h], h)) if pure
                else max(hidden, key=lambda h: (counts[h], h)))
        purity, cover = counts[best] / len(ids), counts[best] / size[best]
        status = "recovered" if hits else "partial" if pure else "junk"
        if status == "junk":
            known = max(listed, key=lambda n: (counts[n], n))
            if counts[known] / len(ids) >= PURITY:
                status = "known"
        recovered.update(hits)
        rows.append({"best": best, "purity": round(purity, 3), "coverage": round(cover, 3),
                     "size": len(ids), "status": status,
                     **({"also_recovered": sorted(set(hits) - {best})} if len(hits) > 1
                        else {})})
    return rows, recovered


def baseline(corpus: Any, size: int, reduce: bool) -> tuple[list[list[str]], list[str]]:
    """BERTopic-style topics over every article: HDBSCAN over the embeddings (after a
    t-SNE layout with `reduce`, BERTopic's UMAP step), named by class-based TF-IDF."""
    from openTSNE import TSNE
    from sklearn.cluster import HDBSCAN

    points = corpus.embeddings
    if reduce:
        points = np.asarray(TSNE(metric="cosine", random_state=0, n_jobs=1).fit(points))
    labels = HDBSCAN(min_cluster_size=size).fit(points).labels_
    groups = [np.flatnonzero(labels == g) for g in sorted(set(labels) - {-1})]
    names = [" / ".join(t.text for t in terms[:2]) for terms in
             distinctive_terms([f.candidates for f in corpus.features], groups, 2)]
    return [[corpus.ids[i] for i in g] for g in groups], names


def one_run(name: str, seed: int, work: Path, config: Config,
            join: tuple[str, str] | None = None) -> dict[str, Any]:
    articles = load_articles(SHARED / f"{name}.jsonl", config)
    listed = entries(name)
    gold = {a.id: list(a.categories) for a in articles}
    if join:
        joined = "+".join(join)
        listed = [e for e in listed if e["name"] not in join] + [{"name": joined}]
        shown = [replace(a, categories=list(dict.fromkeys(
            joined if c in join else c for c in a.categories))) for a in articles]
        targets = list(join)
    else:
        hidden = to_hide(Counter(c for a in articles for c in a.categories), listed, seed)
        listed = [e for e in listed if e["name"] not in hidden]
        shown = without(articles, set(hidden))
        targets = hidden
    where = work / (f"{name}-join-{seed}" if join else f"{name}-{seed}")
    where.mkdir(parents=True, exist_ok=True)
    model = trained(where, shown, listed, config)
    proposal = suggest(model, Articles(shown, name), config)
    listed_names = [e["name"] for e in listed]
    ours, recovered = match([p.articles for p in proposal.additions], gold, targets,
                            listed_names)
    for row, new in zip(ours, proposal.additions, strict=True):
        row.update(name=new.name, keywords=new.keywords, examples=new.examples)
    out = {"set": name, "seed": seed, "hidden": targets, "recovered": sorted(recovered),
           "proposals": ours, "merges": [(m.merged, m.into) for m in proposal.merges],
           "removals": [r.name for r in proposal.removals],
           "badly_fitted": proposal.about["badly_fitted"], "min_size": proposal.about["min_size"],
           "seconds": proposal.about["seconds"]}
    if join:
        out["joined"] = joined
        return out
    corpus = read_corpus(model, shown)
    size = min_size(len(corpus), config)
    for variant, reduce in (("bertopic_raw", False), ("bertopic_tsne", True)):
        groups, names = baseline(corpus, size, reduce)
        rows, got = match(groups, gold, targets, listed_names)
        for row, label in zip(rows, names, strict=True):
            row["name"] = label
        out[variant] = {"recovered": sorted(got), "clusters": rows}
    return out


def totals(runs: list[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    def part(run: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        if key is None:
            return run["recovered"], run["proposals"]
        return run[key]["recovered"], run[key]["clusters"]

    hidden = sum(len(r["hidden"]) for r in runs)
    recovered = sum(len(part(r)[0]) for r in runs)
    status = Counter(row["status"] for r in runs for row in part(r)[1])
    return {"hidden": hidden, "recovered": recovered,
            "recovered_share": round(recovered / max(hidden, 1), 3),
            "junk": status["junk"], "partial": status["partial"], "known": status["known"],
            "junk_per_recovered": round(status["junk"] / recovered, 2) if recovered else None}


def timing(work: Path, config: Config, n: int, seed: int = 0) -> dict[str, Any]:
    """`hybrid taxonomy suggest` on n articles from a trained model and its cache."""
    records = [json.loads(line) for name in SETS
               for line in (SHARED / f"{name}.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    listed = list({e["name"]: e for name in SETS for e in entries(name)}.values())
    hidden = set(to_hide(Counter(c for r in records for c in r["categories"]), listed, seed))
    data, model_dir = work / f"articles-{n}.jsonl", work / f"model-{n}"
    write_set(data, [{**r, "categories": [c for c in r["categories"] if c not in hidden]}
                     for r in records], n, first_copy=0)
    taxonomy = work / f"taxonomy-{n}.json"
    taxonomy.write_text(json.dumps([e for e in listed if e["name"] not in hidden],
                                   ensure_ascii=False), "utf-8")
    hybrid = [sys.executable, "-m", "hybrid.cli", "--quiet", "--cache-dir", config.cache_dir]
    if not model_dir.exists():
        timed([*hybrid, "train", "--data", str(data), "--taxonomy", str(taxonomy),
               "--out", str(model_dir), "--workers", "2", "--json"], {})
    load = os.getloadavg()
    run = timed([*hybrid, "taxonomy", "suggest", "--model", str(model_dir), "--data", str(data),
                 "--out", str(work / f"proposal-{n}.json"), "--no-llm", "--json"], {})
    about = run["output"]["proposal"]
    return {"articles": n, "hidden": len(hidden), "wall_seconds": run["wall_seconds"],
            "cpu_seconds": run["cpu_seconds"], "peak_rss_mb": run["peak_rss_mb"],
            "articles_per_second": round(n / run["wall_seconds"], 1),
            "badly_fitted": about["badly_fitted"], "additions": about["additions"],
            "suggest_seconds_inside": about["seconds"],
            "load_average": {"before": load, "after": os.getloadavg()}}


def names_sheet(runs: list[dict[str, Any]], sheet: Path, key: Path, seed: int = 0,
                statuses: tuple[str, ...] = STATUSES) -> int:
    """A blind sheet of every proposal of the hidden-category runs, and its key apart: the
    judge sees each proposal's name, keywords and titles and the list it was proposed for,
    never the hidden names nor which proposals the match found. The names of the recovered
    ones are scored; for the others, whether they are a real subject the list lacks (the
    issue's exception to junk). `statuses`: only the proposals the match gave these."""
    items = [(run, row) for run in runs for row in run["proposals"] if row["status"] in statuses]
    random.Random(seed).shuffle(items)
    lists: dict[tuple[str, int], str] = {}
    for run in runs:  # the lists of the runs the sheet holds proposals of
        if any(r is run for r, _ in items):
            lists.setdefault((run["set"], run["seed"]), f"L{len(lists) + 1}")
    lines = [SHEET_HEAD.format(n=len(items)), "## The lists", ""]
    for (name, seed_), label in lists.items():
        run = next(r for r in runs if (r["set"], r["seed"]) == (name, seed_))
        shown = [e["name"] for e in entries(name) if e["name"] not in run["hidden"]]
        lines += [f"{label}: {', '.join(shown)}", ""]
    answers = {}
    for number, (run, row) in enumerate(items, 1):
        lines += [f"## {number}", "", f"List: {lists[(run['set'], run['seed'])]}", "",
                  f"Name: {row['name']}", "", f"Keywords: {', '.join(row['keywords'])}", "",
                  "Titles:", "", *(f"- {title}" for title in row["examples"]), ""]
        answers[str(number)] = {"set": run["set"], "seed": run["seed"],
                                "status": row["status"], "hidden_category": row["best"],
                                "proposed_name": row["name"], "size": row["size"],
                                "purity": row["purity"], "coverage": row["coverage"]}
    sheet.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    sheet.write_text("\n".join(lines), "utf-8")
    key.write_text(json.dumps(answers, ensure_ascii=False, indent=1), "utf-8")
    return len(items)


def score_names(key: Path, verdicts: Path) -> dict[str, Any]:
    """The share of recovered categories whose proposed name the judge accepted, overall and
    per set; and the junk left once the proposals the judge found a real subject the list
    lacks are set aside. Every item of the key must have exactly one well-formed verdict."""
    answers = json.loads(key.read_text("utf-8"))
    judged: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(verdicts.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        v = json.loads(line)
        if v.get("id") not in answers or v["id"] in judged:
            raise ValueError(f"{verdicts}:{n}: unknown or repeated id {v.get('id')!r}")
        if v.get("verdict") not in ("ACCEPT", "REJECT"):
            raise ValueError(f"{verdicts}:{n}: verdict must be ACCEPT or REJECT")
        if v.get("subject") not in ("REAL", "NOT"):
            raise ValueError(f"{verdicts}:{n}: subject must be REAL or NOT")
        judged[v["id"]] = v
    if missing := sorted(set(answers) - set(judged), key=int):
        raise ValueError(f"{verdicts}: no verdict for items {missing}")
    by_set: dict[str, list[bool]] = {}
    for item, answer in answers.items():
        if answer["status"] == "recovered":
            by_set.setdefault(answer["set"], []).append(judged[item]["verdict"] == "ACCEPT")
    every = [ok for oks in by_set.values() for ok in oks]
    unmatched = [i for i, a in answers.items() if a["status"] in ("junk", "known")]
    real = [i for i in unmatched if judged[i]["subject"] == "REAL"]
    recovered = [i for i, a in answers.items() if a["status"] == "recovered"]
    return {"accepted": round(sum(every) / len(every), 3) if every else None,
            "names": len(every),
            "per_set": {s: round(sum(v) / len(v), 3) for s, v in by_set.items()},
            "reasons": dict(Counter(judged[i]["reason"] for i in recovered
                                    if judged[i]["reason"])),
            "junk_before_reader": len(unmatched), "judged_real_subjects": len(real),
            "junk_after_reader": len(unmatched) - len(real),
            "junk_per_recovered_after_reader": round((len(unmatched) - len(real))
                                                     / len(recovered), 2) if recovered else None,
            "partial_judged_real": sum(judged[i]["subject"] == "REAL"
                                       for i, a in answers.items() if a["status"] == "partial")}


SHEET_HEAD = """# Category sheet: {n} proposed categories

A website's category list is missing some subjects. For each numbered item below, a program
found a group of articles that no category on the site's list fits well, and proposed a NAME
for a new category that would hold them. You see the list it was proposed for (under "The
lists", by its label), the proposed name, the group's most distinctive keywords and the
titles of five typical articles of the group. Answer two questions per item.

1. The NAME. Judge it as a reader of the site would, who browses by category: would you
accept it as the name of a category holding these articles?

ACCEPT when the name says what the articles are about, at the level of a category (a
subject a reader would browse), even if you would word it differently.

REJECT, with one reason, when the name is
- FRAGMENT: a piece of a word, name or compound;
- GENERIC: too vague to say what the articles are about (方法, 研究, tools, notes);
- NARROW: one article's detail, not what the group shares;
- WRONG: about something else than most of the titles;
- ODD: no name a person would give a category: a sentence piece, a code token, a file
  name, a number, two unrelated words glued together.

2. The SUBJECT, whatever you thought of the name: is the group a real subject that the list
lacks? "REAL" when most titles share one subject a reader would browse as a category, and no
category on the list already names it; else "NOT" (the titles share no subject, or the list
already has a category for it).

## What to write

One JSON line per item (all {n}) and nothing else, for example (made up):

{{"id": "1", "verdict": "ACCEPT", "reason": null, "better_name": null, "subject": "REAL"}}
{{"id": "2", "verdict": "REJECT", "reason": "GENERIC", "better_name": "数据库", "subject": "REAL"}}
{{"id": "3", "verdict": "REJECT", "reason": "WRONG", "better_name": null, "subject": "NOT"}}

- "id": the item's number on this sheet, as a string.
- "verdict": "ACCEPT" or "REJECT"; "reason": null for ACCEPT, else one of "FRAGMENT",
  "GENERIC", "NARROW", "WRONG", "ODD".
- "better_name": for a REJECT, the name you would give the group (or null).
- "subject": "REAL" or "NOT".
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--work", type=Path, help="Keep the trained models here (reused).")
    parser.add_argument("--no-hidden", dest="hidden", action="store_false",
                        help="Skip the hidden-category runs (e.g. only the timing).")
    parser.add_argument("--joined-seeds", type=int, default=1,
                        help="Seeds of the merges experiment per set.")
    parser.add_argument("--no-joined", dest="joined", action="store_false")
    parser.add_argument("--no-timing", dest="timing", action="store_false")
    parser.add_argument("--timing-articles", type=int, default=10_000)
    parser.add_argument("--out", type=Path, help="Write every run's details as JSON here.")
    parser.add_argument("--sheet", type=Path, help="Write the blind sheet of names here...")
    parser.add_argument("--key", type=Path, help="...and its key here.")
    parser.add_argument("--sheet-status", nargs="+", choices=STATUSES, default=STATUSES,
                        help="Only these proposals on the sheet (e.g. recovered).")
    parser.add_argument("--score-names", nargs=2, type=Path, metavar=("KEY", "VERDICTS"),
                        help="Only score a judge's verdicts on the sheet of names.")
    parser.add_argument("--runs", type=Path,
                        help="Only write --sheet and --key from a finished run's --out.")
    args = parser.parse_args()
    if args.score_names:
        print(json.dumps(score_names(*args.score_names), ensure_ascii=False, indent=1))
        return
    if args.runs:
        if not (args.sheet and args.key):
            parser.error("--runs writes a sheet: give --sheet and --key")
        runs = json.loads(args.runs.read_text("utf-8"))["runs"]
        n = names_sheet(runs, args.sheet, args.key, statuses=tuple(args.sheet_status))
        print(f"{n} items on {args.sheet}")
        return
    one_thread_per_process()  # as the commands run: processes, not thread pools, share cores
    config = Config()
    with tempfile.TemporaryDirectory(prefix="bench-suggest-") as tmp:
        work = args.work or Path(tmp)
        report: dict[str, Any] = {"runs": [], "joined": []}
        for name in args.sets if args.hidden else []:
            for seed in range(args.seeds):
                run = one_run(name, seed, work, config)
                report["runs"].append(run)
                status = Counter(p["status"] for p in run["proposals"])
                print(f"{name} seed {seed}: hidden {run['hidden']} → recovered "
                      f"{run['recovered']}; proposals {dict(status)}; BERTopic-style "
                      f"{run['bertopic_raw']['recovered']} / t-SNE "
                      f"{run['bertopic_tsne']['recovered']}", flush=True)
                if args.joined and seed < args.joined_seeds:
                    articles = load_articles(SHARED / f"{name}.jsonl", config)
                    pair = to_hide(Counter(c for a in articles for c in a.categories),
                                   entries(name), 1000 + seed, k=2)
                    joined = one_run(name, seed, work, config, join=(pair[0], pair[1]))
                    report["joined"].append(joined)
                    print(f"{name} seed {seed}: joined {joined['joined']} → apart again: "
                          f"{joined['recovered']}", flush=True)
        report["ours"] = totals(report["runs"])  # {} runs: zeros
        report["bertopic_raw"] = totals(report["runs"], "bertopic_raw")
        report["bertopic_tsne"] = totals(report["runs"], "bertopic_tsne")
        report["per_set"] = {name: totals([r for r in report["runs"] if r["set"] == name])
                             for name in args.sets}
        if report["joined"]:
            report["joined_apart"] = {
                "pairs": len(report["joined"]),
                "both_apart": sum(len(j["recovered"]) == 2 for j in report["joined"]),
                "one_apart": sum(len(j["recovered"]) == 1 for j in report["joined"])}
        if args.timing:
            report["timing"] = timing(work, config, args.timing_articles)
    if args.sheet and args.key:
        report["names_sheet"] = names_sheet(report["runs"], args.sheet, args.key,
                                            statuses=tuple(args.sheet_status))
    if args.out:
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")
    print(json.dumps({k: v for k, v in report.items() if k not in ("runs", "joined")},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
