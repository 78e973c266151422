"""How a text uses a word where its shape does not tell: `img` is a plain word, but a text
that says it as "disk.img" and "stage4-disk.img" means a kind of file, and one that writes
`$EPREFIX` means a variable; 译者 written as "译者：某某" labels a field of a credit line.
Readers struck out `img`, `HEIC`, `rpt`, `vmc` and `EPREFIX` shown as tags (round 5: six
tags of our lists, none they accepted; over every list judged in rounds 3-5, 87 rejected and
5 accepted)."""

from __future__ import annotations

import re

from hybrid.ingest.keys import places_said

_FILE_WORDS = re.compile(r"文件|files?(?![a-z])")  # "rpt 文件", "the obj file"; no "filesystem"
_ROLES = ("a file type", "a variable", "a field label")


def role(text: str, key: str) -> str | None:
    """What most of the places `text` says `key` (both keys) make of it: "a file type"
    (after a dot, or before "文件"/"file"), "a variable" (after `$`), "a field label"
    (before a colon; a Chinese one also one character before it), or None. A Latin key
    counts where it is a whole word."""
    places = places_said(text, key)
    latin, seen, plain = key.isascii(), dict.fromkeys(_ROLES, 0), 0
    # at most one role is most places' role: stop once one is, or once none can be (a word
    # said 300 times in a long post was read 300 times)
    for at in places:
        found = _role(text, at, at + len(key), latin)
        if found is None:
            plain += 1
            if 2 * plain >= len(places):
                return None
        else:
            seen[found] += 1
            if 2 * seen[found] > len(places):
                return found
    return None


def _role(text: str, start: int, end: int, latin: bool) -> str | None:
    """What the place `start:end` of `text` makes of the word there, if anything."""
    after = text[end:end + 12].lstrip(" ")
    # a Chinese label may end in one more character (译者注：)
    if after[:1] == ":" or (not latin and after[1:2] == ":"):
        return "a field label"
    if latin and start and text[start - 1] == ".":
        return "a file type"
    if latin and _FILE_WORDS.match(after):
        return "a file type"
    if latin and text[max(start - 2, 0):start].endswith(("$", "${")):
        return "a variable"
    return None

