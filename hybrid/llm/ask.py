"""One LLM answer per article, for whoever asks (the fallback for low-confidence articles, the
teacher of day one): from the cache, or a call within the run's budget. Failures are counted;
after a fatal one, or too many in a row, the run stops calling. Nothing here raises for one
article.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, replace

from hybrid.config import Config
from hybrid.llm.cache import LLMCache
from hybrid.llm.client import Budget, BudgetExhausted, LLMClient, LLMError, LLMFatal, Reply
from hybrid.llm.prompt import answer_fields, estimate_tokens, response_schema
from hybrid.llm.stats import LLMStats
from hybrid.taxonomy import Taxonomy

log = logging.getLogger("hybrid.llm")


@dataclass
class Answer:
    """`reply` when there is one; `status`: "ok", "over_budget", "error" or "unavailable"."""
    status: str
    reply: Reply | None = None
    cached: bool = False
    error: str | None = None


class Asker:
    def __init__(self, config: Config, taxonomy: Taxonomy, stats: LLMStats,
                 client: LLMClient | None = None, budget: Budget | None = None) -> None:
        if client is None:
            if not (config.llm_base_url and config.llm_model):
                raise ValueError("the LLM needs llm_base_url and llm_model")
            client = LLMClient(config.llm_base_url, config.llm_model, config.llm_api_key,
                               config.llm_timeout, config.llm_retries, config.llm_backoff,
                               config.llm_max_output_tokens)
        self.config = config
        self.taxonomy = taxonomy
        self.stats = stats
        self.client = client
        self.cache = LLMCache(config.cache_dir)
        self.budget = budget or Budget(config.llm_max_calls, config.llm_max_tokens)
        self.schema = response_schema(taxonomy, config.max_categories, config.n_tags)
        self._lock = threading.Lock()
        self._failures = 0  # consecutive failed articles
        self.stopped: str | None = None  # why this run no longer calls the LLM

    def ask(self, key: str, messages: list[dict[str, str]], offered: Taxonomy | None = None
            ) -> Answer:
        """The answer for the article whose text `key` identifies (`answer_key`); `offered`:
        a shorter list to choose from than the taxonomy (the teacher check's controls), for
        the response schema and the cache key."""
        offered = self.taxonomy if offered is None else offered
        cache_key = (key, offered.fingerprint, self.client.model)
        cached = self.cache.get(*cache_key)
        if cached is not None:
            self.count("cache_hits")
            return Answer("ok", Reply(**cached), cached=True)
        if self.stopped:
            self.count("unavailable")
            return Answer("unavailable", error=self.stopped)
        estimate = sum(estimate_tokens(m["content"]) + 4 for m in messages)
        try:
            schema = (self.schema if offered is self.taxonomy else
                      response_schema(offered, self.config.max_categories, self.config.n_tags))
            reply = self.client.complete(messages, schema, self.budget, estimate)
        except BudgetExhausted as exc:
            self.count("over_budget")
            return Answer("over_budget", error=str(exc))
        except LLMError as exc:
            self._failed(exc)
            return Answer("error", error=str(exc))
        with self._lock:
            self._failures = 0
        reply = replace(reply, data=answer_fields(reply.data))
        self.cache.put(*cache_key, asdict(reply))
        return Answer("ok", reply)

    def _failed(self, exc: LLMError) -> None:
        with self._lock:
            self.stats.errors += 1
            self._failures += 1
            if isinstance(exc, LLMFatal) or self._failures >= self.config.llm_max_failures:
                if not self.stopped:
                    log.warning("LLM disabled for the rest of the run: %s", exc)
                self.stopped = f"LLM disabled for this run after: {exc}"

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def sync_stats(self, seconds: float) -> None:
        s, b, c = self.stats, self.budget, self.config
        s.calls, s.prompt_tokens = b.calls, b.prompt_tokens
        s.completion_tokens = b.completion_tokens
        s.cost = (b.prompt_tokens * c.llm_price_in_per_1k
                  + b.completion_tokens * c.llm_price_out_per_1k) / 1000
        s.response_format = self.client.response_format
        s.seconds += seconds

    def close(self) -> None:
        self.client.close()
        self.cache.close()
