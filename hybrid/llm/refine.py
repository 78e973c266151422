"""Send the articles the classifier is unsure about to an LLM, and keep only what is authorized.

`LLMRefiner.refine` takes a batch of (article, clean text, prediction) and returns the
predictions in order. Articles at or above the policy's threshold (`llm_threshold`, or in a
checked fallback the check's: `hybrid.llm.check.gate`) are untouched. For the others, an
answer (from the cache, or a call within the run's budget) is validated against the
taxonomy; in `fallback` mode it replaces the classifier's answer (`source="llm"`), unless the
policy's top k does not hold its first category: then, as in `review-only` mode, it is stored
next to it in `prediction.llm["suggestion"]` (status "outside_top_k"), for review. Any
failure keeps the classifier's answer: this never raises for one article, so the batch never
fails. An article is never its own few-shot example.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.config import Config
from hybrid.embed.cache import text_key
from hybrid.errors import UsageError
from hybrid.ingest.article import Article
from hybrid.ingest.clean import CleanText, clean
from hybrid.ingest.keys import label_key
from hybrid.learn.prediction import Prediction
from hybrid.llm.ask import Asker
from hybrid.llm.check.gate import FallbackPolicy, fallback_policy
from hybrid.llm.client import LLMClient, Reply
from hybrid.llm.prompt import Example, build_messages, validate
from hybrid.llm.stats import LLMStats
from hybrid.taxonomy import Taxonomy

if TYPE_CHECKING:
    from hybrid.learn.model import HybridModel

log = logging.getLogger("hybrid.llm")
MODES = ("off", "fallback", "review-only")
Item = tuple[Article, CleanText | None, Prediction]


def _clean(article: Article) -> CleanText:
    try:
        return clean(article)
    except Exception:  # no text means no call; the classifier's answer stays
        return CleanText("", "", "", "")


def answer_key(article: Article) -> str:
    """What the LLM cache keys an answer by: the article's text as parsed."""
    return text_key(json.dumps([article.title, article.description, article.content],
                               ensure_ascii=False))


def training_examples(model: HybridModel | None) -> list[Example | None] | None:
    """Few-shot examples aligned with the model's FAISS index (its training articles); None
    for an article that taught only tags."""
    if model is None:
        return None
    display = model.tagger.display_
    return [Example(t, list(c), [display.get(k, k) for k in keys]) if c else None
            for t, c, keys in zip(model.train_titles, model.train_categories,
                                  model.tagger.train_tags_, strict=True)]


class LLMRefiner:
    def __init__(self, config: Config, taxonomy: Taxonomy, model: HybridModel | None = None,
                 examples: Sequence[Example | None] | None = None,
                 client: LLMClient | None = None, policy: FallbackPolicy | None = None
                 ) -> None:
        """`policy`: which articles go and which answers apply; by default as configured
        (a run's comes from `fallback_policy`, which asks for a check)."""
        if config.llm_mode not in MODES:
            raise ValueError(f"llm_mode must be one of {', '.join(MODES)}, not {config.llm_mode!r}")
        self.config = config
        self.taxonomy = taxonomy
        self.model = model
        self.policy = policy or FallbackPolicy.configured(config)
        self.enabled = config.llm_mode != "off"
        self.stats = LLMStats(config.llm_mode, config.llm_model, threshold=self.policy.threshold,
                              top_k=self.policy.top_k, check=self.policy.check,
                              unchecked=self.policy.unchecked)
        self.asker: Asker | None = None
        if not self.enabled:
            return
        try:
            self.asker = Asker(config, taxonomy, self.stats, client)
        except ValueError as exc:
            raise ValueError(f"llm_mode={config.llm_mode!r}: {exc}") from exc
        self.examples = examples if examples is not None else training_examples(model)

    @property
    def budget(self) -> Any:
        return self.asker.budget

    def wants(self, prediction: Prediction) -> bool:
        return (self.enabled and prediction.error is None
                and prediction.confidence < self.policy.threshold)

    def refine_pairs(self, pairs: Sequence[tuple[Article, Prediction]]) -> list[Prediction]:
        return self.refine([(article, None, prediction) for article, prediction in pairs])

    def refine(self, items: Sequence[Item]) -> list[Prediction]:
        out = [p for _, _, p in items]
        chosen = [i for i, p in enumerate(out) if self.wants(p)]
        if not chosen:
            return out
        started = time.perf_counter()
        self.stats.selected += len(chosen)
        texts = {i: items[i][1] or _clean(items[i][0]) for i in chosen}
        shots = self._few_shot([texts[i] for i in chosen], [items[i][0].id for i in chosen])
        with ThreadPoolExecutor(max(1, self.config.llm_concurrency)) as pool:
            futures = {i: pool.submit(self._safe_one, items[i][0], texts[i], out[i], shot)
                       for i, shot in zip(chosen, shots, strict=True)}
            for i, future in futures.items():
                out[i] = future.result()
        self.asker.sync_stats(time.perf_counter() - started)
        return out

    def requests(self, items: Sequence[Item]) -> list[list[dict[str, str]]]:
        """The messages each article would be sent (not sending them): for the cost
        estimate that comes before any call."""
        texts = [text or _clean(article) for article, text, _ in items]
        shots = self._few_shot(texts, [article.id for article, _, _ in items])
        return [self._messages(text, pred, shot)
                for (_, _, pred), text, shot in zip(items, texts, shots, strict=True)]

    def close(self) -> None:
        if self.asker is not None:
            self.asker.close()

    def __enter__(self) -> LLMRefiner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- one article ---------------------------------------------------------------------
    def _safe_one(self, article: Article, text: CleanText, pred: Prediction,
                  examples: list[Example]) -> Prediction:
        try:
            return self._one(article, text, pred, examples)
        except Exception as exc:  # the LLM must never fail the batch
            log.warning("LLM step failed for article %r: %s", article.id, exc)
            self.asker.count("errors")
            return replace(pred, llm={"status": "error", "error": f"{type(exc).__name__}: {exc}"})

    def _one(self, article: Article, text: CleanText, pred: Prediction,
             examples: list[Example]) -> Prediction:
        if not (text.title or text.description or text.body):
            return replace(pred, llm={"status": "skipped", "error": "no text to send"})
        answer = self.asker.ask(answer_key(article), self._messages(text, pred, examples))
        if answer.reply is None:
            return replace(pred, llm={"status": answer.status, "error": answer.error})
        return self._apply(pred, answer.reply, answer.cached, text)

    def _apply(self, pred: Prediction, reply: Reply, cached: bool,
               text: CleanText) -> Prediction:
        verdict = validate(reply.data, self.taxonomy, self.config.max_categories,
                           self.config.n_tags, supported_tags(text, self.model))
        info: dict[str, Any] = {
            "status": "ok", "model": self.asker.client.model, "cached": cached,
            "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "latency_s": round(reply.latency, 3), "response_format": reply.response_format,
            "blocked": verdict.blocked}
        self.asker.count("answered")
        self.asker.count("blocked", len(verdict.blocked))
        self.asker.count("tags_dropped", verdict.dropped_tags)
        if not verdict.categories:
            self.asker.count("empty")
            return replace(pred, llm={**info, "status": "empty"})
        suggestion = {"categories": verdict.categories, "tags": verdict.tags or pred.tags}
        if self.config.llm_mode == "review-only":
            return replace(pred, llm={**info, "suggestion": suggestion})
        k = self.policy.top_k
        if k is not None and verdict.categories[0] not in ranked(pred)[:k]:
            self.asker.count("outside_top_k")
            return replace(pred, llm={**info, "status": "outside_top_k", "top_k": k,
                                      "suggestion": suggestion})
        self.asker.count("applied")
        return replace(pred, **suggestion, source="llm",
                       llm={**info, "classifier": pred.output()})

    # ---- helpers -------------------------------------------------------------------------
    def _messages(self, text: CleanText, pred: Prediction, examples: list[Example]
                  ) -> list[dict[str, str]]:
        hints = [(name, pred.scores[name]) for name in ranked(pred)[:self.config.llm_top_k]]
        return build_messages(self.taxonomy, text, hints, examples, self.config.max_categories,
                              self.config.n_tags, self.config.llm_article_tokens)

    def _few_shot(self, texts: list[CleanText], ids: list[str]) -> list[list[Example]]:
        """The nearest labelled articles but the article itself (a training article asked
        about, as in a check, would otherwise show the LLM its own label)."""
        k = self.config.llm_few_shot
        if self.model is None or not self.examples or k <= 0:
            return [[] for _ in texts]
        try:
            _, rows = self.model.tagger.neighbours(self.model.featurize(texts))
        except Exception as exc:  # few-shot is a nicety; the call goes out without it
            log.warning("no few-shot examples: %s", exc)
            return [[] for _ in texts]
        train_ids = self.model.train_ids
        return [[ex for j in row if j >= 0 and train_ids[j] != own
                 and (ex := self.examples[j]) is not None][:k]
                for row, own in zip(rows, ids, strict=True)]


def ranked(pred: Prediction) -> list[str]:
    """The classifier's categories, most probable first."""
    return sorted(pred.scores, key=lambda name: -pred.scores[name])


def supported_tags(text: CleanText, model: HybridModel | None) -> Callable[[str], str | None]:
    """An LLM tag is kept only if the article's text says it, or the site's vocabulary has
    it (then in the site's spelling): the LLM is the one part that can invent."""
    words = label_key(" ".join((text.title, text.description, text.body)))
    tagger = model.tagger if model is not None else None

    def supported(tag: str) -> str | None:
        if tagger is not None and tagger.canonical(tag) in tagger.display_:
            return tagger.display_[tagger.canonical(tag)]
        return tag if label_key(tag) in words else None
    return supported


def open_refiner(config: Config, model_dir: str | Path) -> Any:
    """An `LLMRefiner` (a context manager) when the LLM is on, else a null context. A
    fallback without a passing check of its LLM is refused here, before any work
    (`fallback_policy`)."""
    if config.llm_mode == "off":
        return contextlib.nullcontext()
    from hybrid.learn.model import HybridModel  # only with the LLM on: the parent of a pool

    model = HybridModel.load(model_dir, config=config)  # for few-shot neighbours
    try:
        return LLMRefiner(config, model.taxonomy, model,
                          policy=fallback_policy(config, model_dir))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
