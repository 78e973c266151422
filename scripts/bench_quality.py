"""Reader quality before and after a change (not a test): the same folds, two code trees.

    python scripts/bench_quality.py dump --out /tmp/after.json
    PYTHONPATH=/path/to/old/checkout python scripts/bench_quality.py dump --out /tmp/before.json
    python scripts/bench_quality.py compare /tmp/before.json /tmp/after.json --show 20
    python scripts/bench_quality.py small --size 150 --seeds 3

`dump` runs 5-fold cross-validation (`--seed`; 0, the default, gives the folds `hybrid cv`
uses) of whichever `hybrid` is importable, on each dev set in ../shared/data, and writes
every method's out-of-fold output per article: ours and the baselines (TF-IDF + LR,
embedding + LR, `jieba.analyse.extract_tags`), trained in the same run. It runs on older
checkouts too, which is why it only touches what they already had. jiegec's macro-F1 moves
by ±0.03 from one fold seed to the next (a category of 3 articles): compare rare-category
scores over several seeds.

With this checkout, `dump` also keeps what `hybrid cv` reports for the same folds
(calibration, risk-coverage, the routing ceiling through the gold-label server).

`small` is the small-site case: each dev set subsampled to `--size` labelled articles
(`--seeds` draws), cross-validated the same way; tag F1@5 of ours against
`jieba.analyse.extract_tags`.

`compare` scores both dumps with this checkout's metrics and tag-defect counter (the site
vocabulary is every author tag of the set), prints one table per set, and then `--show`
articles per set side by side: the author's labels, before, after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("jiegec", "oec2003", "csl")


def dump(args: argparse.Namespace) -> None:
    import hybrid
    from hybrid.config import Config
    from hybrid.taxonomy import load_taxonomy

    # by the files of the checkout imported: an editable install would also serve the
    # newer modules to an older checkout
    if (Path(hybrid.__file__).parent / "evaluation").is_dir():
        from hybrid.evaluation.crossval import out_of_fold_outputs
        from hybrid.ingest.records import load_articles
    else:  # a checkout from before the redesign
        from hybrid.article import load_articles
        from hybrid.evaluate import out_of_fold as out_of_fold_outputs

    # `hybrid cv`'s confidence and routing report came with the routing module
    new = (Path(hybrid.__file__).parent / "evaluation" / "routing.py").is_file()
    out = {"code": str(Path(hybrid.__file__).parent), "sets": {}}
    for name in args.sets:
        config = Config()
        taxonomy = load_taxonomy(SHARED / "taxonomies" / f"{name}.json")
        started = time.perf_counter()
        articles, outputs = out_of_fold_outputs(load_articles(SHARED / f"{name}.jsonl", config),
                                                taxonomy, config, 5, args.seed)
        methods = {}
        for method, o in outputs.items():
            row = {}
            if "proba" in o:
                proba = np.asarray(o["proba"])
                row["proba"] = np.round(proba, 4).tolist()
                row["sets"] = [[taxonomy.names[j] for j in np.flatnonzero(s)] for s in o["sets"]]
                row["confidence"] = np.asarray(o.get("confidence", proba.max(axis=1))).tolist()
            if "tags" in o:
                row["tags"] = o["tags"]
            methods[method] = row
        out["sets"][name] = {"ids": [a.id for a in articles], "names": taxonomy.names,
                             "seconds": round(time.perf_counter() - started, 1),
                             "methods": methods}
        if new:
            from hybrid.evaluation.crossval import score

            cv = score(outputs, articles, taxonomy, config)["hybrid"]
            out["sets"][name]["hybrid_cv"] = {k: cv[k] for k in ("confidence", "defects")}
        print(f"{name}: {len(articles)} articles in {out['sets'][name]['seconds']}s",
              file=sys.stderr)
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")


def _score(run: dict, by_id: dict, texts: dict, taxonomy) -> list[list]:
    from hybrid.evaluation import defects
    from hybrid.evaluation.metrics import calibration, category_metrics, tag_metrics, top1_right
    from hybrid.ingest.keys import label_key

    names = run["names"]
    articles = [by_id[i] for i in run["ids"]]
    Y = np.array([[int(n in taxonomy.map_labels(a.categories)[0]) for n in names]
                  for a in articles])
    vocabulary = Counter(label_key(t) for a in by_id.values() for t in a.tags)
    rows = []
    for method, o in run["methods"].items():
        row = [method]
        if "proba" in o:
            proba = np.array(o["proba"])
            sets = np.array([[int(n in s) for n in names] for s in o["sets"]])
            m = category_metrics(Y, sets, proba, names)
            right = top1_right(Y, proba)
            row += [m["accuracy_top1"], m["macro_f1_top1"], m["samples_f1"],
                    m["labels_per_article"], calibration(o["confidence"], right)["ece"]]
        else:
            row += [None] * 5
        if "tags" in o:
            flaws = [defects.flaws(t, texts[i], vocabulary)
                     for t, i in zip(o["tags"], run["ids"], strict=True)]
            d = defects.count(flaws)
            row += [tag_metrics([a.tags for a in articles], o["tags"])["f1_at_5"],
                    d["fragments"], d["near_duplicate_pairs"], d["unsupported"],
                    d["share_with_broken_tags"]]
        else:
            row += [None] * 5
        rows.append(row)
    return rows


def compare(args: argparse.Namespace) -> None:
    from hybrid.config import Config
    from hybrid.evaluation.tables import table
    from hybrid.ingest.clean import clean
    from hybrid.ingest.records import load_articles
    from hybrid.taxonomy import load_taxonomy

    before, after = (json.loads(Path(p).read_text(encoding="utf-8"))
                     for p in (args.before, args.after))
    headers = ["method", "acc@1", "macroF1@1", "labelsetF1", "labels/article", "ECE",
               "tagF1@5", "fragments", "near-dup pairs", "unsupported", "broken share"]
    for name, run in after["sets"].items():
        by_id = {a.id: a for a in load_articles(SHARED / f"{name}.jsonl", Config())}
        taxonomy = load_taxonomy(SHARED / "taxonomies" / f"{name}.json")
        texts = {}
        for i in run["ids"]:
            c = clean(by_id[i])
            texts[i] = " ".join((c.title, c.description, c.body, c.code))
        gold = np.mean([len(taxonomy.map_labels(by_id[i].categories)[0]) for i in run["ids"]])
        print(f"\n## {name}: {len(run['ids'])} articles, {gold:.2f} author labels per article\n")
        rows = [[f"{when} {r[0]}", *r[1:]]
                for when, sets in (("before", before["sets"]), ("after", after["sets"]))
                for r in _score(sets[name], by_id, texts, taxonomy)]
        print(table(rows, headers))
        if args.show:
            _side_by_side(name, before["sets"][name], run, by_id, args.show)


def small(args: argparse.Namespace) -> None:
    from hybrid.config import Config
    from hybrid.evaluation.crossval import cross_validate, label_matrix
    from hybrid.evaluation.tables import table
    from hybrid.ingest.records import load_articles
    from hybrid.taxonomy import load_taxonomy

    rows = []
    for name in SETS:
        config = Config()
        taxonomy = load_taxonomy(SHARED / "taxonomies" / f"{name}.json")
        articles = load_articles(SHARED / f"{name}.jsonl", config)
        labelled = [a for a, y in zip(articles, label_matrix(articles, taxonomy), strict=True)
                    if y.any()]
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            sample = [labelled[i] for i in rng.choice(len(labelled), args.size, replace=False)]
            methods = cross_validate(sample, taxonomy, config, 5, seed)["methods"]
            ours = methods["hybrid"]["tags"]["f1_at_5"]
            jieba = methods["jieba_extract_tags"]["tags"]["f1_at_5"]
            rows.append([name, seed, args.size,
                         methods["hybrid"]["categories"]["accuracy_top1"],
                         methods["tfidf_lr"]["categories"]["accuracy_top1"], ours, jieba,
                         ours / jieba])
            print(rows[-1], file=sys.stderr)
    print(table(rows, ["set", "seed", "articles", "acc@1 ours", "acc@1 TF-IDF+LR",
                       "tagF1@5 ours", "tagF1@5 jieba", "ratio"]))
    for name in SETS:
        mine = [r for r in rows if r[0] == name]
        print(f"{name}: mean tag F1@5 ours {np.mean([r[5] for r in mine]):.3f}, jieba "
              f"{np.mean([r[6] for r in mine]):.3f}, ratio {np.mean([r[7] for r in mine]):.2f}")


def _side_by_side(name: str, before: dict, after: dict, by_id: dict, n: int) -> None:
    """`n` articles drawn with a fixed seed, so every run shows the same ones."""
    old = dict(zip(before["ids"], zip(before["methods"]["hybrid"]["sets"],
                                       before["methods"]["hybrid"]["tags"], strict=True),
                   strict=True))
    picked = np.random.default_rng(0).choice(len(after["ids"]), n, replace=False)
    print(f"\n{name}: {n} articles, author | before | after\n")
    for k in sorted(picked):
        i = after["ids"][k]
        a = by_id[i]
        cats, tags = after["methods"]["hybrid"]["sets"][k], after["methods"]["hybrid"]["tags"][k]
        print(f"- {a.title[:60]}\n    author: {a.categories} {a.tags}\n"
              f"    before: {old[i][0]} {old[i][1]}\n    after:  {cats} {tags}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("dump")
    d.add_argument("--out", required=True)
    d.add_argument("--sets", nargs="+", default=list(SETS))
    d.add_argument("--seed", type=int, default=0, help="seed of the 5 folds (0: `hybrid cv`'s)")
    c = commands.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("--show", type=int, default=0)
    s = commands.add_parser("small")
    s.add_argument("--size", type=int, default=150)
    s.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    {"dump": dump, "compare": compare, "small": small}[args.command](args)


if __name__ == "__main__":
    main()
