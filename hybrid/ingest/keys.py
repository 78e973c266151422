"""One identity for labels: category names, aliases and tags compare by this key."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=200_000)
def label_key(label: str) -> str:
    """Width-, case- and whitespace-insensitive (cached: the same words recur)."""
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())
