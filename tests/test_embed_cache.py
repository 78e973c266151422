"""hybrid.embed.cache: embeddings on disk, never computed twice."""

from __future__ import annotations

import numpy as np

from hybrid.embed import CachedEmbedder, Embedder


class CountingEmbedder(Embedder):
    id = "counting"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed(self, texts):
        self.calls.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_cache_never_embeds_the_same_text_twice_and_persists(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    first = cached.embed(["a", "bb", "a", "ccc"])
    assert inner.calls == ["a", "bb", "ccc"]
    again = CachedEmbedder(inner, tmp_path).embed(["ccc", "bb", "a"])
    assert inner.calls == ["a", "bb", "ccc"]
    np.testing.assert_allclose(again, first[[3, 1, 0]])


def test_cache_is_keyed_by_embedder_id(tmp_path):
    a = CountingEmbedder()
    CachedEmbedder(a, tmp_path).embed(["same text"])
    b = CountingEmbedder()
    b.id = "other-model"
    CachedEmbedder(b, tmp_path).embed(["same text"])
    assert b.calls == ["same text"]


def test_cached_embedder_pickles_for_worker_processes(tmp_path):
    import pickle

    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    cached.embed(["x"])
    clone = pickle.loads(pickle.dumps(cached))
    assert clone.embed(["x"]).shape == (1, 4)
