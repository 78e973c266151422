"""Any sentence-transformers model, by hub name or local directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hybrid.embed.base import Embedder, normalize_rows


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, name_or_path: str, batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(
                "the sentence-transformers backend needs: pip install 'hybrid[st]'") from exc
        self._model = SentenceTransformer(name_or_path, device="cpu")
        self._batch_size = batch_size
        dimension = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension  # renamed in sentence-transformers 6
        self.dim = int(dimension())
        # A local path's parent folders are machine-specific; the model's folder name is not.
        label = Path(name_or_path).name if Path(name_or_path).exists() else name_or_path
        self.id = f"sentence-transformers:{label}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self._batch_size,
                                     convert_to_numpy=True, show_progress_bar=False)
        return normalize_rows(vectors)
