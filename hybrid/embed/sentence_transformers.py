"""Any sentence-transformers model, by hub name or local directory."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.embed.base import Embedder, normalize_rows


class SentenceTransformerEmbedder(Embedder):
    """The model (and torch) load on the first text to embed. A retrain whose embeddings all
    come from the cache never loads them, and worker processes receive the model's name,
    not its weights."""

    def __init__(self, name_or_path: str, batch_size: int = 32) -> None:
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ImportError("the sentence-transformers backend needs: "
                              "pip install 'hybrid[st]'")
        self.name_or_path = name_or_path
        self._batch_size = batch_size
        self._model: Any = None
        # A local path's parent folders are machine-specific; the model's folder name is not.
        label = Path(name_or_path).name if Path(name_or_path).exists() else name_or_path
        self.id = f"sentence-transformers:{label}"

    @property
    def model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.name_or_path, device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        dimension = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension  # renamed in sentence-transformers 6
        return int(dimension())

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self._batch_size,
                                    convert_to_numpy=True, show_progress_bar=False)
        return normalize_rows(vectors)
