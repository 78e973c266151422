"""Send the articles the classifier is unsure about to an LLM, and keep only what is authorized.

`LLMRefiner.refine` takes a batch of (article, clean text, prediction) and returns the
predictions in order. Articles at or above `llm_threshold` confidence are untouched. For the
others, an answer (from the cache, or a call within the run's budget) is validated against the
taxonomy; in `fallback` mode it replaces the classifier's answer (`source="llm"`), in
`review-only` mode it is stored next to it in `prediction.llm["suggestion"]`. Any failure keeps
the classifier's answer: this never raises for one article, so the batch never fails.
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
                 client: LLMClient | None = None) -> None:
        if config.llm_mode not in MODES:
            raise ValueError(f"llm_mode must be one of {', '.join(MODES)}, not {config.llm_mode!r}")
        self.config = config
        self.taxonomy = taxonomy
        self.model = model
        self.enabled = config.llm_mode != "off"
        self.stats = LLMStats(config.llm_mode, config.llm_model)
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
                and prediction.confidence < self.config.llm_threshold)

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
        shots = self._few_shot([texts[i] for i in chosen])
        with ThreadPoolExecutor(max(1, self.config.llm_concurrency)) as pool:
            futures = {i: pool.submit(self._safe_one, items[i][0], texts[i], out[i], shot)
                       for i, shot in zip(chosen, shots, strict=True)}
            for i, future in futures.items():
                out[i] = future.result()
        self.asker.sync_stats(time.perf_counter() - started)
        return out

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
        hints = sorted(pred.scores.items(), key=lambda kv: -kv[1])[:self.config.llm_top_k]
        messages = build_messages(self.taxonomy, text, hints, examples,
                                  self.config.max_categories, self.config.n_tags,
                                  self.config.llm_article_tokens)
        answer = self.asker.ask(answer_key(article), messages)
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
        self.asker.count("applied")
        return replace(pred, **suggestion, source="llm",
                       llm={**info, "classifier": pred.output()})

    # ---- helpers -------------------------------------------------------------------------
    def _few_shot(self, texts: list[CleanText]) -> list[list[Example]]:
        k = self.config.llm_few_shot
        if self.model is None or not self.examples or k <= 0:
            return [[] for _ in texts]
        try:
            _, ids = self.model.tagger.neighbours(self.model.featurize(texts))
        except Exception as exc:  # few-shot is a nicety; the call goes out without it
            log.warning("no few-shot examples: %s", exc)
            return [[] for _ in texts]
        return [[ex for j in row if j >= 0 and (ex := self.examples[j]) is not None][:k]
                for row in ids]


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
    """An `LLMRefiner` (a context manager) when the LLM is on, else a null context."""
    if config.llm_mode == "off":
        return contextlib.nullcontext()
    from hybrid.learn.model import HybridModel  # only with the LLM on: the parent of a pool

    model = HybridModel.load(model_dir, config=config)  # for few-shot neighbours
    try:
        return LLMRefiner(config, model.taxonomy, model)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
