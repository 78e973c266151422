"""hybrid.embed.keybert_backend: KeyBERT without torch."""

from __future__ import annotations

import subprocess
import sys


def test_tagging_never_loads_torch(sample_model_dir, cache_dir):
    """KeyBERT's package init would import torch (~0.3 GB and seconds per worker)."""

    code = ("import sys\n"
            "from hybrid.ingest.article import parse_article\n"
            "from hybrid.config import Config\n"
            "from hybrid.learn.model import HybridModel\n"
            f"model = HybridModel.load({str(sample_model_dir)!r}, "
            f"config=Config(cache_dir={str(cache_dir)!r}))\n"
            "model.predict([parse_article({'id': 'a', 'title': 'nginx 配置', "
            "'content': '用 nginx 做反向代理'})])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
