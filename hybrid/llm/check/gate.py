"""May this LLM be the fallback of this model? `run`, `tag-file` and `serve` ask before they
start: only with a check that found it helps (`hybrid llm check`), and then only where it
helped: under the check's threshold, and inside the classifier's top k it chose.

`--llm-unchecked` (the `llm_unchecked` setting) runs the fallback without a check, as
configured (`llm_threshold`, every answer applied), and the run report says so.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

from hybrid.config import Config
from hybrid.errors import UsageError
from hybrid.llm.check import record

log = logging.getLogger("hybrid.llm")


@dataclass(frozen=True)
class FallbackPolicy:
    """Which articles go to the LLM (confidence under `threshold`) and which answers are
    applied (first category in the classifier's `top_k`; None: every one)."""
    threshold: float
    top_k: int | None = None
    check: str | None = None  # the check it rests on, in a line
    unchecked: bool = False  # a fallback run with --llm-unchecked

    @classmethod
    def configured(cls, config: Config) -> FallbackPolicy:
        """As the settings say, no check involved (review-only, or the library's own use)."""
        return cls(config.llm_threshold)


def check_command(config: Config, model_dir: str | Path) -> str:
    url = record.shown_url(config.llm_base_url or "URL")
    return (f"hybrid llm check --model {shlex.quote(str(model_dir))} --data LABELLED.jsonl "
            f"--llm-base-url {shlex.quote(url)} --llm-model "
            f"{shlex.quote(config.llm_model or 'MODEL')}")


def fallback_policy(config: Config, model_dir: str | Path) -> FallbackPolicy:
    """The policy of a run with `config` over the model in `model_dir`; a `UsageError` that
    names the command to run when fallback mode has no passing check for this LLM (unless
    `llm_unchecked`). Other modes apply no answer, and need no check."""
    if config.llm_mode != "fallback":
        return FallbackPolicy.configured(config)
    if not (config.llm_base_url and config.llm_model):
        raise UsageError("--llm-mode fallback needs --llm-base-url and --llm-model")
    found, current = record.find(model_dir, config.llm_base_url, config.llm_model,
                                 config.model_key)
    llm = f"{config.llm_model} at {record.shown_url(config.llm_base_url)}"
    if found is not None and current and found.recommendation.use:
        rec = found.recommendation
        return FallbackPolicy(rec.threshold, rec.top_k, found.summary())
    if found is None:
        why = f"{llm} has not been checked for the model {model_dir}"
    elif not current:
        why = (f"the check of {llm} was made for an earlier model (trained "
               f"{found.model_created_at}), not the one in {model_dir}")
    else:
        why = (f"the check of {llm} found it does not help this model ({found.summary()}: "
               f"{found.recommendation.reason})")
    if config.llm_unchecked:
        log.warning("the LLM fallback runs unchecked (--llm-unchecked): %s", why)
        return FallbackPolicy(config.llm_threshold, unchecked=True, check=why)
    raise UsageError(f"--llm-mode fallback refused: {why}. Measure it first: "
                     f"`{check_command(config, model_dir)}` (or --label-source manual instead of "
                     "--data); or use --llm-mode review-only, or --llm-unchecked to apply its "
                     "answers unmeasured")
