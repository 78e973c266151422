"""Optional LLM second opinion for the articles the classifier is unsure about.

Locked to the authorized list (strict JSON schema with an enum, then local validation),
budgeted per run, cached, and never able to fail a batch. See docs/llm.md.
"""

from hybrid.llm.client import Budget, BudgetExhausted, LLMClient, LLMError, LLMFatal, parse_json
from hybrid.llm.prompt import Example, Verdict, build_messages, response_schema, validate
from hybrid.llm.refine import MODES, LLMRefiner, LLMStats, content_hash, training_examples

__all__ = ["MODES", "Budget", "BudgetExhausted", "Example", "LLMClient", "LLMError",
           "LLMFatal", "LLMRefiner", "LLMStats", "Verdict", "build_messages", "content_hash",
           "parse_json", "response_schema", "training_examples", "validate"]
