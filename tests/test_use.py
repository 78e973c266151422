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
