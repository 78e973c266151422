"""One identity for labels: category names, aliases and tags compare by this key."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_TAG_CHARS = 40
# what would make a tag markup, an entity or a link on a page that renders it
_MARKUP = re.compile(r"[<>\"'`{}]|&#?\w+;|://")


@lru_cache(maxsize=200_000)
def label_key(label: str) -> str:
    """Width-, case- and whitespace-insensitive (cached: the same words recur)."""
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())


def plain_tag(tag: str) -> str | None:
    """`tag` as plain text a site can render: NFKC, single spaces, no control or format
    characters, no markup, entities or links, at most `MAX_TAG_CHARS`; None if that leaves
    nothing worth showing."""
    text = " ".join(unicodedata.normalize("NFKC", tag).split())
    if (not text or len(text) > MAX_TAG_CHARS or _MARKUP.search(text)
            or any(unicodedata.category(ch)[0] == "C" for ch in text)
            or not any(ch.isalnum() for ch in text)):
        return None
    return text
