"""hybrid.evaluation.oracle: a perfect or noisy teacher, over the real LLM path."""

from __future__ import annotations

import contextlib

from hybrid.config import Config
from hybrid.evaluation.oracle import Oracle, serve
from hybrid.ingest.clean import clean
from hybrid.labels.teacher import LLMTeacher
from hybrid.learn.prediction import Prediction
from hybrid.llm.refine import LLMRefiner
from hybrid.taxonomy import Taxonomy


def ask(oracle: Oracle, articles, config: Config) -> list[Prediction]:
    with serve(oracle) as url:
        settings = config.with_overrides(llm_mode="fallback", llm_base_url=url,
                                          llm_model="oracle", llm_threshold=1.01,
                                          cache_dir=config.cache_dir + "-oracle")
        with LLMRefiner(settings, oracle.taxonomy) as refiner:
            return refiner.refine([(a, None, Prediction(a.id, ["前端开发"], confidence=0.1))
                                   for a in articles])


def test_a_perfect_oracle_answers_with_the_held_labels(sample_articles, sample_taxonomy, config,
                                                     tmp_path):
    articles = sample_articles[:12]
    oracle = Oracle(articles, sample_taxonomy, config.llm_article_tokens)
    out = ask(oracle, articles, config.with_overrides(cache_dir=str(tmp_path)))
    assert oracle.calls == 12 and oracle.unknown == 0
    for a, p in zip(articles, out, strict=True):
        assert p.source == "llm" and p.categories == a.categories[:3]


def test_a_noisy_oracle_is_wrong_at_its_rate_and_always_the_same_way(sample_articles,
                                                                    sample_taxonomy):
    oracle = Oracle(sample_articles, sample_taxonomy, 800, noise=0.3, seed=1)
    wrong = [a for a in sample_articles if oracle._categories(a) != a.categories]
    assert 0.15 <= len(wrong) / len(sample_articles) <= 0.45
    assert all(oracle._categories(a) == oracle._categories(a) for a in wrong)
    assert all(set(oracle._categories(a)) <= set(sample_taxonomy.names) for a in wrong)


def test_the_oracle_answers_from_the_list_it_is_offered(sample_articles, sample_taxonomy,
                                                       config, tmp_path):
    """As a careful LLM would: asked with a list that leaves out an article's categories
    (a negative control of the teacher check), it answers none; wrong on every article, it
    picks a wrong one from that list, the same whatever the list's order."""
    article = sample_articles[0]
    held = sample_taxonomy.map_labels(article.categories)[0]
    others = [c for c in sample_taxonomy.categories if c.name not in held][:3]
    offered = Taxonomy(others)
    reordered = Taxonomy(others[::-1])
    answers = []
    for noise in (0.0, 1.0):
        oracle = Oracle(sample_articles, sample_taxonomy, config.llm_article_tokens, noise)
        with serve(oracle) as url:
            for n, taxonomy in enumerate((offered, reordered)):
                settings = config.with_overrides(llm_base_url=url, llm_model=f"o{noise}",
                                                  cache_dir=str(tmp_path / f"{noise}-{n}"))
                with contextlib.closing(LLMTeacher(settings, sample_taxonomy)) as teacher:
                    answers.append(teacher.control(article, clean(article), taxonomy))
    assert answers[:2] == [[], []]
    assert answers[2] == answers[3] and len(answers[2]) == 1
    assert answers[2][0] in offered.names
