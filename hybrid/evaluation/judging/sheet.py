"""A blind sheet: sampled articles, each with every system's tags as lists A, B, C… whose
letters are shuffled per article, and the key to the letters in a file of its own.

The sheet shows no system name, no article id of the data set and no fixed order; a list
is shown even when another list of the article has the same tags, and an empty list is
shown as "(no tags)", so the judge cannot tell systems apart by what is left out.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.errors import UsageError
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText, clean, prefix

EXCERPT_CHARS = 600
NO_TAGS = "(no tags)"
REASONS = ("FRAGMENT", "GENERIC", "UNSUPPORTED", "DUPLICATE", "ODD")
_KEY_FORMAT = 1


@dataclass
class KeyList:
    system: str
    tags: list[str]


@dataclass
class KeyArticle:
    id: str  # the article's number on the sheet
    article: str  # its id in the data set
    text_chars: int  # characters of clean prose, code not counted
    lists: dict[str, KeyList]  # by letter


@dataclass
class Key:
    """Which system made which list of which article: for scoring, never for the judge."""

    set: str
    seed: int
    systems: list[str]
    sources: dict[str, str]
    articles: list[KeyArticle]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"format": _KEY_FORMAT, **asdict(self)},
                                          ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Key:
        """The key, its shape checked before anything uses it."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            if raw.get("format") != _KEY_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {_KEY_FORMAT}")
            articles = [KeyArticle(str(a["id"]), str(a["article"]), int(a["text_chars"]),
                                   {letter: KeyList(str(x["system"]), _strings(x["tags"]))
                                    for letter, x in a["lists"].items()})
                        for a in raw["articles"]]
            key = cls(str(raw["set"]), int(raw["seed"]), _strings(raw["systems"]),
                      {str(k): str(v) for k, v in raw["sources"].items()}, articles)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: not a judging key ({type(exc).__name__}: {exc})") from exc
        for a in key.articles:
            if sorted(x.system for x in a.lists.values()) != sorted(key.systems):
                raise UsageError(f"{path}: article {a.id} does not have one list per system")
        if len({a.id for a in key.articles}) != len(key.articles):
            raise UsageError(f"{path}: an article number is given twice")
        return key


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, got {value!r:.80}")
    return value


def dump_lists(dump: Mapping[str, Any], set_name: str, method: str) -> dict[str, list[str]]:
    """One method's out-of-fold tags per article id, from a `bench_quality.py dump` file."""
    try:
        run = dump["sets"][set_name]
        tags = run["methods"][method]["tags"]
    except KeyError as exc:
        raise UsageError(f"the dump has no {exc.args[0]!r} for set {set_name!r} "
                         f"(method {method!r})") from exc
    if len(tags) != len(run["ids"]):
        raise UsageError(f"the dump's {set_name}/{method} has {len(tags)} tag lists for "
                         f"{len(run['ids'])} articles")
    return {str(i): list(t) for i, t in zip(run["ids"], tags, strict=True)}


def build_sheet(articles: Mapping[str, Article], lists: Mapping[str, Mapping[str, Sequence[str]]],
                n: int, seed: int, set_name: str, sources: Mapping[str, str],
                excerpt_chars: int = EXCERPT_CHARS) -> tuple[str, Key]:
    """The sheet (Markdown) and its key for `n` articles drawn with `seed` from those every
    system tagged (a dump holds only the labelled articles; the authors tagged them all).
    `lists` maps a system's name to its tags per article id."""
    systems = list(lists)
    if not 1 <= len(systems) <= 26:
        raise UsageError(f"a sheet shows 1 to 26 lists per article, not {len(systems)}")
    every = [set(by_id) for by_id in lists.values()]
    unknown = sorted(set.union(*every) - set(articles))
    if unknown:
        raise UsageError(f"article {unknown[0]!r} is not in the data set "
                         f"({len(unknown)} articles in all)")
    ids = sorted(set.intersection(*every))
    if not 1 <= n <= len(ids):
        raise UsageError(f"cannot draw {n} articles from {len(ids)}")
    # the articles by seed and set; the letters also by what the lists say, so that neither
    # a second set nor a later round of the same articles repeats an order a judge has seen
    picked = [ids[i] for i in _rng(seed, set_name).choice(len(ids), n, replace=False)]
    shuffle = _rng(seed, set_name, json.dumps([[lists[s][i] for s in systems] for i in picked],
                                              ensure_ascii=False))
    letters = [chr(ord("A") + k) for k in range(len(systems))]
    blocks, entries = [], []
    for number, article_id in enumerate(picked, 1):
        article = articles[article_id]
        order = shuffle.permutation(len(systems))
        shown = {letter: KeyList(systems[k], list(lists[systems[k]][article.id]))
                 for letter, k in zip(letters, order, strict=True)}
        text = clean(article)
        entries.append(KeyArticle(str(number), article.id, len(text.body), shown))
        blocks.append(_article_block(str(number), text, shown, excerpt_chars))
    key = Key(set_name, seed, systems, dict(sources), entries)
    return _header(n, letters) + "\n\n".join(blocks) + "\n", key


def _rng(seed: int, *salt: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(x.encode("utf-8")) for x in salt)])


def write_sheet(text: str, key: Key, sheet_path: str | Path, key_path: str | Path,
                force: bool = False) -> None:
    """Write both files; never over a sheet or key already there (a judge may have filled
    it, and its verdicts can only be scored with its own key) unless `force`."""
    for path in (sheet_path, key_path):
        if Path(path).exists() and not force:
            raise UsageError(f"{path} exists: choose another path, or --force to replace it")
    Path(sheet_path).parent.mkdir(parents=True, exist_ok=True)
    Path(key_path).parent.mkdir(parents=True, exist_ok=True)
    Path(sheet_path).write_text(text, encoding="utf-8")
    key.save(key_path)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(none)"


def _fenced(text: str) -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    run, fence = 0, 3
    for ch in text:
        run = run + 1 if ch == "`" else 0
        fence = max(fence, run + 1)
    return f"{'`' * fence}text\n{text}\n{'`' * fence}"


def _article_block(number: str, text: CleanText, shown: Mapping[str, KeyList],
                   excerpt_chars: int) -> str:
    body = text.body
    excerpt = prefix(body, excerpt_chars)
    code = "; code blocks not shown" if text.code else ""
    if not body:
        head = f"Text: (no prose{code})"
    elif len(excerpt) < len(body):
        head = f"Text (the first {len(excerpt)} of {len(body):,} characters{code}):"
    else:
        head = f"Text (all {len(body):,} characters{code}):"
    lines = [f"## {number}", "", f"Title: {_one_line(text.title)}",
             f"Description: {_one_line(text.description)}", "", head]
    if body:
        lines += ["", _fenced(excerpt + (" …" if len(excerpt) < len(body) else ""))]
    lines.append("")
    for letter, listed in shown.items():
        tags = json.dumps(listed.tags, ensure_ascii=False) if listed.tags else NO_TAGS
        lines.append(f"- {letter}: {tags}")
    return "\n".join(lines)


def _header(n: int, letters: Sequence[str]) -> str:
    examples = [{"tags": [{"tag": "etcd", "verdict": "ACCEPT", "reason": None},
                          {"tag": "问题", "verdict": "REJECT", "reason": "GENERIC"}],
                 "rating": 3, "missing": ["Consul"]},
                {"tags": [], "rating": 1, "missing": ["Docker", "RBAC"]},
                {"tags": [{"tag": "Kubernetes", "verdict": "REJECT", "reason": "UNSUPPORTED"}],
                 "rating": 2, "missing": []}]
    line = json.dumps({"id": "1", "lists": {x: examples[min(k, 2)]
                                            for k, x in enumerate(letters)}},
                      ensure_ascii=False)
    lists = ", ".join(letters)
    return f"""# Tag sheet: {n} articles

Each article below shows its title, its description, the start of its text, and
{len(letters)} tag list{"s" if len(letters) > 1 else ""} ({lists}). The order of the lists
changes from article to article. A list shown as "{NO_TAGS}" is empty: judge it too
(rating and missing tags). Each tag list is a JSON array: a tag is exactly the string
between the quotes.

## What to write

One JSON line per article (all {n} of them) and nothing else in the file, for example
(made-up tags):

{line}

- "id": the article's number on this sheet (its heading), as a string.
- "lists": every list of the article, under its letter ({lists}).
- "tags": every tag of the list, spelt exactly as shown, one entry per tag shown
  (for an empty list, "tags": []).
- "verdict": "ACCEPT" or "REJECT"; "reason": null for ACCEPT, and for REJECT one of
  {", ".join(f'"{r}"' for r in REASONS)}.
- "rating": a whole number from 1 to 5, for the list as a whole.
- "missing": up to two tags an editor would clearly want that the list lacks ([] if none).

"""
