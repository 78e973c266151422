"""How common a word is in general English or Chinese (wordfreq's Zipf scale: 7 is "the",
3 is a word seen once per million words): a reader does not click `network`, 平台 or 问题,
however often an article says them, but does click `etcd` and 知识图谱.

wordfreq's own tables take ~0.8 s and ~95 MB to load, too much for every worker. The words
common enough to matter (Zipf ≥ `FLOOR`, ~70,000) are read from them once and kept in the
cache folder; a later process reads that in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from importlib.metadata import version
from pathlib import Path

from hybrid.output import write_text

FLOOR = 3.0  # rarer words are all the same here: not common
_LANGUAGES = ("en", "zh")


_words: dict[str, float] | None = None


def zipf(word: str) -> float:
    """`word`'s Zipf frequency in English (ASCII) or Chinese (anything else), casefolded;
    below `FLOOR` (or unknown), 0."""
    return (_words if _words is not None else load()).get(word.casefold(), 0.0)


def load(cache_dir: str | None = None) -> dict[str, float]:
    """Read (or build and keep) the table, from `cache_dir` if given: workers call this
    before their first article, so no article pays for it."""
    global _words
    if _words is None:
        _words = _table(cache_dir)
    return _words


def _table(cache_dir: str | None) -> dict[str, float]:
    import wordfreq

    folder = Path(cache_dir or os.environ.get("HYBRID_CACHE_DIR")
                  or Path.home() / ".cache" / "hybrid")
    path = folder / f"commonness-{version('wordfreq')}-{FLOOR}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    table: dict[str, float] = {}
    for language in _LANGUAGES:
        for word, freq in wordfreq.get_frequency_dict(language, wordlist="best").items():
            if word.isascii() != (language == "en"):  # 'app' in Chinese text is not Chinese
                continue
            value = round(math.log10(freq) + 9, 2)
            if value >= FLOOR:
                table[word] = max(value, table.get(word, 0.0))
    with contextlib.suppress(OSError):  # a read-only or full cache: the next process builds
        write_text(path, json.dumps(table, ensure_ascii=False))
    return table
