"""The embedder interface and the factory that turns a spec string into a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

DEFAULT_EMBEDDER = "use-multilingual"


class Embedder(ABC):
    """`embed` returns L2-normalised float32 rows, so a dot product is a cosine."""

    id: str
    dim: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


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
