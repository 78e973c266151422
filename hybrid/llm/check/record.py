"""A check's result, kept in the model directory (the `llm_checks.json` annex), one per LLM.

The annex is verified with the model (`hybrid.learn.artifacts`): an edited one is refused,
and one written for an earlier model (before a retrain) is not this model's. Checks are
keyed by a digest of the LLM's base URL and model name, so a URL that holds a password is
never written down; the URL is kept only without its user, password and query.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from filelock import FileLock
from pydantic import TypeAdapter, ValidationError

from hybrid.errors import ModelError
from hybrid.learn.artifacts import read_annex, write_annex
from hybrid.llm.check.measure import Interval, Measured, Recommendation, Route

ANNEX = "llm_checks.json"


@dataclass
class CheckResult:
    """What `hybrid llm check` found for one LLM and one model."""
    llm_model: str
    llm_url: str  # without user, password or query
    checked_at: str
    model_created_at: str  # the model checked (its manifest's creation time)
    labelled_from: str
    how: str  # out of fold, or the model's own predictions
    articles: int  # labelled articles in the set
    budget: int  # at most this many requests
    sent: int  # articles chosen (the least confident)
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    estimate: str  # what was printed before any call
    intervals: str  # how the intervals were computed
    answered: int
    llm_accuracy: Interval
    classifier_accuracy: Interval
    difference: Interval
    classifier_top1: float
    routes: list[Route] = field(default_factory=list)
    recommendation: Recommendation = field(default_factory=lambda: Recommendation(False))

    @classmethod
    def of(cls, measured: Measured, **facts: Any) -> CheckResult:
        return cls(**facts, **{k: getattr(measured, k) for k in (
            "answered", "llm_accuracy", "classifier_accuracy", "difference",
            "classifier_top1", "routes", "recommendation")})

    def text(self, where: str | Path) -> str:
        """The report of `hybrid llm check`."""
        rec = self.recommendation
        lines = [
            f"{self.llm_model} at {self.llm_url} as the fallback of the model in {where} "
            f"(trained {self.model_created_at}); {self.articles} labelled articles from "
            f"{self.labelled_from}, predicted {self.how}",
            f"sent the {self.sent} least confident: {self.calls} requests, "
            f"{self.prompt_tokens + self.completion_tokens} tokens, est. cost {self.cost:.4f}",
            f"on the {self.answered} articles answered: LLM top-1 "
            f"{self.llm_accuracy.share()}, classifier {self.classifier_accuracy.share()}, "
            f"difference {self.difference.points()} points",
            f"routing the articles under a threshold to the LLM: top-1 over the whole set "
            f"(classifier alone {self.classifier_top1:.3f}) and its gain in points, applying "
            "any answer, or only one inside the classifier's top k:"]
        ks = list(dict.fromkeys(r.top_k for r in self.routes))
        lines.append(f"{'threshold':>9} {'routed':>10}  " + "".join(
            f"{'any answer' if k is None else f'top {k}':<28}" for k in ks))
        for threshold in dict.fromkeys(r.threshold for r in self.routes):
            row = [r for r in self.routes if r.threshold == threshold]
            lines.append(f"{threshold:>9.3f} {row[0].routed:>5} {row[0].share:>4.0%}  " + "".join(
                f"{f'{r.top1:.3f} {r.gain.points()}':<28}" for r in row))
        lines.append(f"recommendation: {'use it: ' if rec.use else 'do not use: '}{rec.reason}")
        lines.append(f"intervals: {self.intervals}")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line for a run report."""
        rec = self.recommendation
        verdict = (f"route under {rec.threshold:.3f}, top-{rec.top_k or 'any'}, "
                   f"{rec.gain.points()} points" if rec.use and rec.gain else "do not use")
        return (f"checked {self.checked_at} on {self.answered} articles: LLM "
                f"{self.llm_accuracy.share()}, classifier {self.classifier_accuracy.share()}; "
                f"{verdict}")


_RESULT = TypeAdapter(CheckResult)


def llm_key(base_url: str, model: str) -> str:
    """What a check is kept under: a digest of the base URL (no trailing slash) and model."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\n{model}".encode()).hexdigest()[:32]


def shown_url(url: str) -> str:
    """The URL without user, password, query or fragment: safe to write and print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _checks(model_dir: str | Path, key: str | None) -> tuple[dict[str, Any], bool]:
    """(stored checks by LLM key, whether they were made for this model)."""
    found = read_annex(model_dir, ANNEX, key)
    if found is None:
        return {}, True
    data, current = found
    checks = data.get("checks")
    if not isinstance(checks, dict):
        raise ModelError(f"{Path(model_dir) / ANNEX}: no 'checks' object; remove it and run "
                         "`hybrid llm check` again")
    return checks, current


def save(model_dir: str | Path, result: CheckResult, base_url: str, key: str | None) -> Path:
    """Keep `result` as this model's check of the LLM at `base_url`; other LLMs' checks
    stay, and those made for an earlier model are dropped. One writer at a time (a lock
    file beside the model directory)."""
    real = Path(os.path.realpath(model_dir))
    with FileLock(real.with_name(f".{real.name}.{ANNEX}.lock"), timeout=60):
        checks, current = _checks(real, key)
        kept = checks if current else {}
        kept[llm_key(base_url, result.llm_model)] = asdict(result)
        write_annex(real, ANNEX, {"checks": kept}, key)
    return real / ANNEX


def find(model_dir: str | Path, base_url: str, model: str, key: str | None
         ) -> tuple[CheckResult | None, bool]:
    """(this LLM's check, whether it was made for this model); (None, True) if none."""
    checks, current = _checks(model_dir, key)
    stored = checks.get(llm_key(base_url, model))
    if stored is None:
        return None, True
    try:
        return _RESULT.validate_python(stored), current
    except ValidationError as exc:
        raise ModelError(f"{Path(model_dir) / ANNEX}: the check of {model} does not read "
                         f"({str(exc)[:200]}); run `hybrid llm check` again") from exc
