"""Tags judged blind, as a reader would (not a test): a sheet for a judge, then its scores.

    python scripts/bench_quality.py dump --out /tmp/after.json
    python scripts/judge.py sheet /tmp/after.json --set jiegec --n 60 --out sheets/jiegec.md
    python scripts/judge.py sheet /tmp/after.json --before /tmp/before.json --set jiegec ...
    python scripts/judge.py score sheets/jiegec.key.json judged/jiegec.jsonl

`sheet` draws `--n` articles (`--seed`) of a dev set from a `bench_quality.py dump` and
writes the sheet (Markdown: title, description, the first 600 characters of clean prose, and
the lists A, B, C… in a random order per article) and its key (`<sheet>.key.json` unless
`--key`), which says which list is which and is never shown to the judge. The lists are ours
(the dump's `hybrid`), `jieba.analyse.extract_tags` and the author's tags (from the data
set), and with `--before` ours from a second dump, the code before. The judge gets only
`../shared/reader-judging.md` and the sheet, and writes one JSON line per article.

`score` reads that file strictly against the key (every article, list and tag; verdicts and
reasons from the rubric) and prints one row per system; `--json` prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEMS = ("ours", "jieba", "author", "before")


def sheet(args: argparse.Namespace) -> None:
    from hybrid.config import Config
    from hybrid.evaluation.judging.sheet import build_sheet, dump_lists, write_sheet
    from hybrid.ingest.records import load_articles

    data = Path(args.data_dir) / f"{args.set}.jsonl"
    articles = {a.id: a for a in load_articles(data, Config())}
    dump = json.loads(Path(args.dump).read_text(encoding="utf-8"))
    lists = {"ours": dump_lists(dump, args.set, "hybrid"),
             "jieba": dump_lists(dump, args.set, "jieba_extract_tags"),
             "author": {i: a.tags for i, a in articles.items()}}
    sources = {"ours": f"{args.dump} (hybrid)", "jieba": f"{args.dump} (jieba_extract_tags)",
               "author": str(data)}
    if args.before:
        before = json.loads(Path(args.before).read_text(encoding="utf-8"))
        lists["before"] = dump_lists(before, args.set, "hybrid")
        sources["before"] = f"{args.before} (hybrid)"
    systems = args.systems or [s for s in SYSTEMS if s in lists]
    absent = [s for s in systems if s not in lists]
    if absent:
        sys.exit(f"error: no lists for {', '.join(absent)} (`before` needs --before)")
    text, key = build_sheet(articles, {s: lists[s] for s in systems}, args.n, args.seed,
                            args.set, {s: sources[s] for s in systems})
    key_path = args.key or Path(args.out).with_suffix(".key.json")
    write_sheet(text, key, args.out, key_path, args.force)
    print(f"{args.out}: {args.n} articles, lists {', '.join(systems)} (key: {key_path})")


def score(args: argparse.Namespace) -> None:
    from hybrid.evaluation.judging.scores import format_scores
    from hybrid.evaluation.judging.scores import score as score_sheet
    from hybrid.evaluation.judging.sheet import Key
    from hybrid.evaluation.judging.verdicts import read_verdicts

    key = Key.load(args.key)
    scores = score_sheet(key, read_verdicts(args.verdicts, key), args.long_chars)
    if args.json:
        print(json.dumps([s.as_dict() for s in scores], ensure_ascii=False, indent=1))
    else:
        print(f"{key.set}: {len(key.articles)} articles judged ({args.verdicts})\n")
        print(format_scores(scores, args.long_chars))


def main() -> None:
    from hybrid.errors import HybridError

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("sheet", help="a blind sheet and its key from a dump")
    s.add_argument("dump", help="`bench_quality.py dump` output: ours and jieba's tags")
    s.add_argument("--set", required=True, help="dev set (jiegec, oec2003, csl, ...)")
    s.add_argument("--out", required=True, help="the sheet to write (Markdown)")
    s.add_argument("--key", help="the key to write (default: the sheet's path, .key.json)")
    s.add_argument("--n", type=int, default=60, help="articles on the sheet")
    s.add_argument("--seed", type=int, default=0, help="draws the articles and the letters")
    s.add_argument("--before", help="a second dump: its `hybrid` tags as the list `before`")
    s.add_argument("--systems", nargs="+", choices=SYSTEMS,
                   help="lists to show (default: ours, jieba, author, and before if given)")
    s.add_argument("--data-dir", default=str(SHARED), help="where <set>.jsonl is")
    s.add_argument("--force", action="store_true", help="replace an existing sheet and key")
    c = commands.add_parser("score", help="score a judge's verdicts with the sheet's key")
    c.add_argument("key", help="the sheet's key (.key.json)")
    c.add_argument("verdicts", help="the judge's file: one JSON line per article")
    c.add_argument("--long-chars", type=int, default=300,
                   help="prose length from which an article should have at least 3 tags")
    c.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args()
    try:
        {"sheet": sheet, "score": score}[args.command](args)
    except HybridError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (OSError, json.JSONDecodeError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
