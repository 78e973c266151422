"""What the LLM step did in one run: calls, tokens, cost, and what happened to the answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# gpt-4o-mini list price in USD per 1M tokens (input, output), as OpenAI publishes it: the
# reference every cost estimate quotes beside the configured llm_price_*_per_1k
GPT_4O_MINI_PER_1M = (0.15, 0.60)


def gpt_4o_mini_cost(prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * GPT_4O_MINI_PER_1M[0]
            + completion_tokens * GPT_4O_MINI_PER_1M[1]) / 1e6


@dataclass
class LLMStats:
    """For the run report. `calls` counts HTTP requests, retries and rejected formats included."""
    mode: str
    model: str | None
    selected: int = 0  # articles under the confidence threshold
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # estimate from llm_price_*_per_1k
    answered: int = 0  # articles with a usable LLM answer (fresh or cached)
    applied: int = 0  # answers that replaced the classifier's (fallback mode)
    cache_hits: int = 0
    blocked: int = 0  # unauthorized category names dropped from answers
    tags_dropped: int = 0  # answer tags that were markup or not in the article nor the site
    empty: int = 0  # answers without any authorized category: classifier kept
    errors: int = 0  # articles whose call failed after retries: classifier kept
    over_budget: int = 0  # articles not sent because the budget was spent
    unavailable: int = 0  # articles not sent because the server kept failing
    response_format: str | None = None
    seconds: float = 0.0
    threshold: float | None = None  # the confidence under which articles went out
    top_k: int | None = None  # fallback: answers applied only inside the classifier's top k
    outside_top_k: int = 0  # answers not applied for that, kept as suggestions for review
    check: str | None = None  # the `hybrid llm check` this run rests on, or why none does
    unchecked: bool = False  # fallback run with --llm-unchecked: its answers were unmeasured

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMStats:
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost": round(self.cost, 6), "seconds": round(self.seconds, 2)}

    def summary(self) -> str:
        held = (f", {self.outside_top_k} outside the classifier's top {self.top_k} kept for "
                "review" if self.top_k is not None else "")
        text = (f"LLM ({self.mode}): {self.selected} low-confidence articles, {self.calls} "
                f"calls, {self.prompt_tokens + self.completion_tokens} tokens, est. cost "
                f"{self.cost:.4f}, {self.cache_hits} cached, {self.applied} applied{held}, "
                f"{self.blocked} unauthorized blocked, {self.errors} errors")
        if self.unchecked:
            return (f"{text}\nUNCHECKED (--llm-unchecked): its answers were applied without "
                    f"a passing `hybrid llm check`: {self.check}")
        return f"{text}\n{self.check}" if self.check else text
