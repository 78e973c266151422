"""hybrid.embed: the registry of backends."""

from __future__ import annotations

import pytest

from hybrid.embed import make_embedder


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("word2vec")
