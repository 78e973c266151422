"""Which MongoDB errors are worth another try, and the one retry policy for them (tenacity):
exponential backoff within a wall-clock budget. Every attempt runs under `pymongo.timeout`
set to what is left of the budget, so no single attempt (a server selection, a reply that
never comes) can carry the whole operation past it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import pymongo
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
)

# Server codes that mean "try again": shutdown, stepdown, not primary, network timeouts,
# and a cursor the server lost when it restarted (the scan reopens it past the last _id).
RETRYABLE_CODES = frozenset({6, 7, 43, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602,
                             13435, 13436})
_MAX_BACKOFF = 30.0
_LAST_ATTEMPT = 0.5  # seconds: the least an attempt is given
_CLEANUP_SECONDS = 2.0
log = logging.getLogger("hybrid.mongo")
T = TypeVar("T")


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
    return bool(getattr(exc, "timeout", False))  # a pymongo.timeout deadline passed


def briefly() -> AbstractContextManager[None]:
    """For cleaning up once the server is lost (closing a cursor or the client sends
    killCursors, which waits a whole server-selection timeout otherwise)."""
    return pymongo.timeout(_CLEANUP_SECONDS)


def call_within(what: str, fn: Callable[[], T], budget: float, attempt_limit: float,
                scrub: Callable[[str], str]) -> T:
    """`fn()`, retried on transient errors until `budget` seconds after the first attempt;
    each attempt limited to `attempt_limit` seconds and to what is left of the budget.
    The last error is raised when the budget is spent."""
    deadline = time.monotonic() + (budget if budget > 0 else attempt_limit)

    def attempt() -> T:
        left = max(min(deadline - time.monotonic(), attempt_limit), _LAST_ATTEMPT)
        with pymongo.timeout(left):
            return fn()

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("event=retry while=%r wait=%.1fs error=%r", what, state.upcoming_sleep,
                    scrub(f"{type(exc).__name__}: {exc}")[:200])

    return Retrying(retry=retry_if_exception(transient), stop=stop_before_delay(budget),
                    wait=wait_exponential(multiplier=0.5, min=0.5, max=_MAX_BACKOFF),
                    before_sleep=before_sleep, reraise=True)(attempt)
