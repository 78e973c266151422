"""Lets KeyBERT score candidates with our embedder (and its cache)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keybert.backend import BaseEmbedder

from hybrid.embed.base import Embedder


class KeyBERTBackend(BaseEmbedder):
    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def embed(self, documents: Sequence[str], verbose: bool = False) -> np.ndarray:
        return self.embedder.embed(list(documents))
