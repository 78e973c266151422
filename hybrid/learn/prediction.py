"""What the model says about one article: the product's output, and what explains it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Prediction:
    id: str
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    confidence: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    neighbours: list[dict[str, Any]] = field(default_factory=list)
    keyword_scores: list[dict[str, Any]] = field(default_factory=list)  # each tag, and why
    dropped_tags: list[dict[str, Any]] = field(default_factory=list)  # strong candidates, and why
    source: str = "model"  # "llm" when an LLM answer replaced the classifier's (hybrid.llm)
    llm: dict[str, Any] | None = None  # LLM provenance: model, tokens, latency, suggestion
    zero_shot: bool = False  # from a model trained without labelled articles

    def output(self) -> dict[str, list[str]]:
        """The product's contract: exactly categories and tags."""
        return {"categories": self.categories, "tags": self.tags}

    def explain(self) -> dict[str, Any]:
        return asdict(self)
