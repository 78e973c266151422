"""The routing ceiling: how much sending the least confident articles to an LLM can recover.

A perfect teacher (`hybrid.evaluation.oracle`, answering from the gold labels on 127.0.0.1)
answers the lowest-confidence 10% and 20% through the real LLM path (`LLMRefiner`: prompt,
client, validation against the taxonomy), and, for comparison, as many articles chosen at
random. If the confidence orders errors well, the first recovers far more.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from hybrid.config import Config
from hybrid.evaluation.oracle import Oracle, serve
from hybrid.ingest.article import Article
from hybrid.learn.prediction import Prediction
from hybrid.llm.refine import LLMRefiner
from hybrid.taxonomy import Taxonomy

SHARES = (0.1, 0.2)
RANDOM_DRAWS = 5


def top1_accuracy(predictions: Sequence[Prediction], gold: Sequence[Sequence[str]]) -> float:
    right = [bool(p.categories) and p.categories[0] in g
             for p, g in zip(predictions, gold, strict=True)]
    return float(np.mean(right)) if right else 0.0


def ceiling(articles: Sequence[Article], predictions: Sequence[Prediction],
            taxonomy: Taxonomy, config: Config, shares: Sequence[float] = SHARES,
            seed: int = 0) -> list[dict[str, Any]]:
    """Per share: top-1 accuracy as predicted, with the lowest-confidence share answered by
    the perfect teacher, and with a random share answered (mean of `RANDOM_DRAWS` draws)."""
    gold = [taxonomy.map_labels(a.categories)[0] for a in articles]
    before = top1_accuracy(predictions, gold)
    order = np.argsort([p.confidence for p in predictions], kind="stable")
    rng = np.random.default_rng(seed)
    oracle = Oracle(articles, taxonomy, config.llm_article_tokens)
    rows = []
    with serve(oracle) as url, tempfile.TemporaryDirectory() as cache:
        settings = config.with_overrides(
            llm_mode="fallback", llm_base_url=url, llm_model="gold-labels", llm_threshold=2.0,
            llm_few_shot=0, llm_max_calls=len(articles) + 1, llm_max_tokens=10**12,
            llm_concurrency=4, llm_retries=0, cache_dir=cache)
        with LLMRefiner(settings, taxonomy) as refiner:
            def answered(chosen: np.ndarray) -> float:
                out = list(predictions)
                items = [(articles[i], None, predictions[i]) for i in chosen]
                for i, p in zip(chosen, refiner.refine(items), strict=True):
                    out[i] = p
                return top1_accuracy(out, gold)

            for share in shares:
                n = max(1, round(share * len(articles)))
                randomly = [answered(rng.choice(len(articles), n, replace=False))
                            for _ in range(RANDOM_DRAWS)]
                rows.append({"share": share, "articles": n, "accuracy": before,
                             "lowest_confidence": answered(order[:n]),
                             "random": float(np.mean(randomly))})
    if oracle.unknown:
        raise RuntimeError(f"the gold-label server did not recognise {oracle.unknown} prompts")
    return rows
