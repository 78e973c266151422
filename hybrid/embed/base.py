"""The embedder interface every backend implements; it imports none of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

DEFAULT_EMBEDDER = "use-multilingual"


class Embedder(ABC):
    """`embed` returns L2-normalised float32 rows, so a dot product is a cosine."""

    id: str
    dim: int

    @property
    def cache_id(self) -> str:
        """What the on-disk cache files vectors under: `id`, plus anything else that
        changes the vectors without changing the model (a tokenizer), so a cache never
        mixes the two."""
        return self.id

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
