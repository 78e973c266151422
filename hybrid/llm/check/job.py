"""`hybrid llm check`: send the articles the fallback would send to the LLM, measure what its
answers would do, and keep the result in the model directory.

The articles are labelled ones (a file, or a collection's manual labels). The model's
predictions for them are out of fold when it trained on them (models trained as it was,
on the other folds), else its own, so their confidence is what new articles would get. The
least confident go to the LLM, up to the budget, through the fallback's own path
(`LLMRefiner`: the same prompt, hints and few-shot examples, validation, cache and budget);
the cost of sending them is printed before the first call. A rerun is answered from the
LLM cache and costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybrid.config import Config
from hybrid.errors import HybridError, UsageError
from hybrid.ingest.article import Article
from hybrid.llm.check import record
from hybrid.llm.check.measure import EVERY_ARTICLE, INTERVALS, measure
from hybrid.llm.check.record import CheckResult
from hybrid.llm.cost import estimate
from hybrid.llm.refine import LLMRefiner, ranked

if TYPE_CHECKING:
    from hybrid.learn.model import HybridModel

ANSWERED = ("ok", "empty")  # an answer without an authorized category is a wrong one
Predicted = tuple[str, list[Article], dict[str, Any]]


def predicted_for(model: HybridModel, articles: Sequence[Article], config: Config,
                  n_folds: int = 5, seed: int = 0,
                  progress: Callable[[str], None] = lambda _: None) -> Predicted:
    """(how, the labelled articles, the model's outputs for them): out of fold if the model
    trained on them (`hybrid.evaluation.quality.outputs_for`)."""
    from hybrid.evaluation.quality import outputs_for  # pandas: only for a check

    return outputs_for(model, articles, config, n_folds, seed, progress)


def check_llm(model_dir: str | Path, config: Config, articles: Sequence[Article],
              labelled_from: str, budget: int, n_folds: int = 5, seed: int = 0,
              progress: Callable[[str], None] = lambda _: None,
              announce: Callable[[str], None] = print,
              predicted: Predicted | None = None) -> CheckResult:
    """Measure the configured LLM as the fallback of the model in `model_dir`, on
    `articles`, sending at most `budget` requests; keep the result beside the model.
    `predicted`: what `predicted_for` gives for them, when the caller has it already
    (checking several LLMs for one model)."""
    from hybrid.learn.model import HybridModel

    if not (config.llm_base_url and config.llm_model):
        raise UsageError("the check needs the LLM: --llm-base-url and --llm-model")
    model = HybridModel.load(model_dir, config=config)
    how, articles, outputs = predicted or predicted_for(model, articles, config, n_folds,
                                                        seed, progress)
    if not articles:
        raise UsageError(f"none of the {labelled_from} articles has a category of the model's "
                         "taxonomy: nothing to measure on")
    predictions, confidence = outputs["predictions"], np.asarray(outputs["confidence"])
    gold = [set(model.taxonomy.map_labels(a.categories)[0]) for a in articles]
    right = [bool(p.categories) and p.categories[0] in g
             for p, g in zip(predictions, gold, strict=True)]
    asked = [int(i) for i in np.argsort(confidence, kind="stable")[:budget]]
    settings = config.with_overrides(llm_mode="review-only", llm_threshold=EVERY_ARTICLE,
                                     llm_max_calls=budget)
    with LLMRefiner(settings, model.taxonomy, model) as refiner:
        items = [(articles[i], None, predictions[i]) for i in asked]
        cost = estimate(settings, refiner.requests(items), "check")
        before = (f"{cost.text()}; at most {budget} requests (--budget), each of at most "
                  f"{settings.llm_max_output_tokens} completion tokens")
        announce(before)
        answers = [p.llm or {} for p in refiner.refine(items)]
        stats = refiner.stats
    got = [a.get("status") in ANSWERED for a in answers]
    if not any(got):
        statuses = ", ".join(sorted({str(a.get("status")) for a in answers}))
        errors = "; ".join(sorted({a["error"] for a in answers if a.get("error")})[:3])
        raise HybridError(f"the LLM answered none of the {len(asked)} articles ({statuses}: "
                          f"{errors or 'no error given'}); nothing was recorded")
    first = [(a.get("suggestion") or {}).get("categories", [None])[0] for a in answers]
    measured = measure(confidence, right, asked, first,
                       [ranked(predictions[i]) for i in asked], [gold[i] for i in asked], got)
    result = CheckResult.of(
        measured, llm_model=config.llm_model, llm_url=record.shown_url(config.llm_base_url),
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model_created_at=model.manifest["created_at"], labelled_from=labelled_from, how=how,
        articles=len(articles), budget=budget, sent=len(asked), calls=stats.calls,
        prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens,
        cost=round(stats.cost, 6), estimate=before, intervals=INTERVALS)
    record.save(model_dir, result, config.llm_base_url, config.model_key)
    return result
