"""Lets KeyBERT score candidates with our embedder (and its cache)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from hybrid.embed.base import Embedder


def _import_keybert() -> None:
    """Import KeyBERT without the integrations its package init pulls in.

    `import keybert` imports its sentence-transformers and transformers backends, and with
    them torch: ~3 s and ~0.3 GB in every worker process, for code we never call, since we
    always hand KeyBERT our own backend. A `None` in `sys.modules` makes those imports raise
    ModuleNotFoundError, which KeyBERT treats as "not installed". Already loaded (by the
    sentence-transformers embedder), they are left alone.
    """
    if "keybert" in sys.modules:
        return
    hidden = [name for name in ("sentence_transformers", "transformers")
              if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import keybert  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


_import_keybert()

from keybert import KeyBERT  # noqa: E402
from keybert.backend import BaseEmbedder  # noqa: E402

__all__ = ["KeyBERT", "KeyBERTBackend"]


class KeyBERTBackend(BaseEmbedder):
    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def embed(self, documents: Sequence[str], verbose: bool = False) -> np.ndarray:
        return self.embedder.embed(list(documents))
