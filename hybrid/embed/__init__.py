"""Sentence embedders behind one small interface, an on-disk cache, and a lazy registry:
a backend (and its heavy imports) loads only when its spec is asked for."""

from __future__ import annotations

from hybrid.embed.base import DEFAULT_EMBEDDER, Embedder
from hybrid.embed.cache import CachedEmbedder

__all__ = ["DEFAULT_EMBEDDER", "CachedEmbedder", "Embedder", "make_embedder"]


def make_embedder(spec: str = DEFAULT_EMBEDDER) -> Embedder:
    """`use-multilingual` or `sentence-transformers:<model name or local path>`."""
    if spec == "use-multilingual":
        from hybrid.embed.use import UseEmbedder

        return UseEmbedder()
    if spec.startswith("sentence-transformers:"):
        from hybrid.embed.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(spec.split(":", 1)[1])
    raise ValueError(
        f"unknown embedder {spec!r}: use 'use-multilingual' or 'sentence-transformers:<name>'")
