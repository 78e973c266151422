"""Which MongoDB errors are worth another try, and the one retry policy for them (tenacity):
exponential backoff until a time budget is spent."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential
from tenacity.stop import stop_base

# Server codes that mean "try again": shutdown, stepdown, not primary, network timeouts.
RETRYABLE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
_MAX_BACKOFF = 30.0
log = logging.getLogger("hybrid.mongo")


def transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionFailure):  # AutoReconnect, NetworkTimeout, NotPrimaryError
        return True
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        codes = [e.get("code") for e in details.get("writeErrors", [])
                 + details.get("writeConcernErrors", [])]
        return bool(codes) and all(c in RETRYABLE_CODES for c in codes)
    if isinstance(exc, OperationFailure):
        return exc.code in RETRYABLE_CODES or exc.has_error_label("RetryableWriteError")
    return False


class Streak(stop_base):
    """Stop before a wait would end past `budget` seconds of failing. `progress()` (a scan
    read a batch) starts the count again, so an hours-long scan keeps its whole budget."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.since: float | None = None

    def progress(self) -> None:
        self.since = time.monotonic()

    def __call__(self, state: RetryCallState) -> bool:
        start = max(state.start_time, self.since or state.start_time)
        return time.monotonic() - start + (state.upcoming_sleep or 0.0) > self.budget


def policy(what: str, budget: float, scrub: Callable[[str], str],
           stop: Streak | None = None) -> Retrying:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("event=retry while=%r wait=%.1fs error=%r", what, state.upcoming_sleep,
                    scrub(f"{type(exc).__name__}: {exc}")[:200])

    return Retrying(retry=retry_if_exception(transient), stop=stop or Streak(budget),
                    wait=wait_exponential(multiplier=0.5, min=0.5, max=_MAX_BACKOFF),
                    before_sleep=before_sleep, reraise=True)
