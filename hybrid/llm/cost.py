"""What some LLM requests will cost, worked out before any call is made: the teacher's labels
(`hybrid bootstrap`) and the articles of a check (`hybrid llm check`) are estimated alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hybrid.config import Config
from hybrid.llm.prompt import estimate_tokens
from hybrid.llm.stats import gpt_4o_mini_cost

TYPICAL_ANSWER_TOKENS = 60  # {"categories": [...], "tags": [...]}
Messages = list[dict[str, str]]


@dataclass
class Estimate:
    """What sending some articles will cost."""
    articles: int
    prompt_tokens: int
    completion_tokens: int  # at most; a typical answer takes ~60
    cost: float  # at the configured llm_price_*_per_1k
    gpt_4o_mini: float  # at gpt-4o-mini's list price, for reference
    purpose: str = "label"

    def scaled(self, articles: int) -> Estimate:
        """The same per article, for `articles` of them."""
        f = articles / max(self.articles, 1)
        return Estimate(articles, round(self.prompt_tokens * f),
                        round(self.completion_tokens * f), self.cost * f, self.gpt_4o_mini * f,
                        self.purpose)

    def text(self) -> str:
        return (f"{self.articles} articles to {self.purpose}: about {self.prompt_tokens} prompt "
                f"and at most {self.completion_tokens} completion tokens; estimated cost "
                f"{self.cost:.4f} at the configured prices, ${self.gpt_4o_mini:.4f} at "
                "gpt-4o-mini's ($0.15 / $0.60 per 1M tokens)")


def estimate(config: Config, requests: Sequence[Messages], purpose: str = "label") -> Estimate:
    """The cost of `requests` (one list of messages per article), as the budget counts
    tokens (`estimate_tokens`, 4 more per message)."""
    prompt = sum(estimate_tokens(m["content"]) + 4 for messages in requests for m in messages)
    completion = len(requests) * min(config.llm_max_output_tokens, TYPICAL_ANSWER_TOKENS)
    cost = (prompt * config.llm_price_in_per_1k + completion * config.llm_price_out_per_1k) / 1000
    return Estimate(len(requests), prompt, completion, cost, gpt_4o_mini_cost(prompt, completion),
                    purpose)
