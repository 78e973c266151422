"""Whole terms out of a segmented Chinese text. jieba cuts a name it does not know into
pieces (苯达莫司汀 → 苯达 + 莫司 + 汀, 银河麒麟 → 银河 + 麒麟), and a piece is no tag: a reader
calls `图谱` of 知识图谱 a fragment. A word the text repeats, always beside the same word, is
part of a longer term: grown to where its occurrences part ways, it is the term the text
uses, and the word alone is not a candidate where the text never says it apart."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence

MAX_TERM_CHARS = 10
_CJK = re.compile(r"[\u4e00-\u9fff]")


def whole_terms(tokens: Sequence[str], candidate: Callable[[int], bool],
                joins: Callable[[int], bool]) -> dict[int, int]:
    """For each occurrence of a grown term, its last token index → its first: grown from a
    repeated Chinese `candidate` token, one neighbouring token at a time, while every
    occurrence has the same neighbour and that neighbour `joins` a term (a content word, not
    a verb like 治疗 that starts a clause); at most `MAX_TERM_CHARS`."""
    places: dict[str, list[int]] = defaultdict(list)
    for i, token in enumerate(tokens):
        if candidate(i) and _CJK.search(token):
            places[token].append(i)
    found: list[tuple[int, int]] = []
    for token, at in places.items():
        if len(at) < 2:
            continue
        first, last, chars = 0, 0, len(token)  # offsets from each occurrence
        while True:
            right = {tokens[i + last + 1] if i + last + 1 < len(tokens) else None for i in at}
            if (len(right) == 1 and (word := right.pop()) and _CJK.search(word)
                    and chars + len(word) <= MAX_TERM_CHARS
                    and all(joins(i + last + 1) for i in at)):
                last += 1
                chars += len(word)
                continue
            left = {tokens[i + first - 1] if i + first > 0 else None for i in at}
            if (len(left) == 1 and (word := left.pop()) and _CJK.search(word)
                    and chars + len(word) <= MAX_TERM_CHARS
                    and all(joins(i + first - 1) for i in at)):
                first -= 1
                chars += len(word)
                continue
            break
        if first or last:
            found.extend((i + first, i + last) for i in at)
    # the longest first; a span that overlaps a longer one is dropped
    spans: dict[int, int] = {}
    taken: set[int] = set()
    for start, end in sorted(found, key=lambda se: se[0] - se[1]):
        if taken.isdisjoint(range(start, end + 1)):
            spans[end] = start
            taken.update(range(start, end + 1))
    return spans
