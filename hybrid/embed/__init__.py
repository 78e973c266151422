"""Sentence embedders behind one small interface, plus an on-disk cache."""

from hybrid.embed.base import Embedder, make_embedder
from hybrid.embed.cache import CachedEmbedder

__all__ = ["CachedEmbedder", "Embedder", "make_embedder"]
