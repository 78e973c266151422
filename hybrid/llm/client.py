"""OpenAI-compatible chat completions over httpx: response-format ladder, retries, budget.

The client asks for strict `json_schema` output first. A server that rejects it (OpenAI-style
servers that lack it answer 4xx; llama-cpp-python's server answers 500 naming
`response_format`) is asked again at once with `{"type": "json_object", "schema": ...}`, then
with no response format and the JSON parsed out of the text. The first format that works is
kept for the rest of the run. Timeouts, connection errors, 429, 5xx, malformed or invalid JSON
and refusals are retried with exponential backoff (tenacity); every request first takes its
share of the `Budget`.

`llm_timeout` bounds each request as a whole, from connecting to the last byte: httpx's own
timeouts bound each read, so a server sending a byte a second would hold a call for as long
as it liked. Requests therefore run on an event loop, under a deadline that cancels them
(`asyncio.timeout`). No more than `MAX_ANSWER_BYTES` of an answer are read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from hybrid.llm.prompt import estimate_tokens

log = logging.getLogger("hybrid.llm")

FORMATS = ("json_schema", "json_object", "plain")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_MENTIONS_FORMAT = re.compile(r"response_format|json_schema|json_object", re.IGNORECASE)
_MAX_DELAY = 60.0
# An answer of `llm_max_output_tokens` (256 by default) is a few kilobytes; a body past this is
# not an answer, and is not read further (a 50 MB one took 400 MB of memory)
MAX_ANSWER_BYTES = 1 << 20


class LLMError(RuntimeError):
    """The LLM gave no usable answer for one article; the caller keeps the classifier's."""


class LLMFatal(LLMError):
    """No later call can succeed either (bad key, no access): stop calling for this run."""


class BudgetExhausted(LLMError):
    pass


class _Retryable(LLMError):
    def __init__(self, message: str, prompt_tokens: int = 0, completion_tokens: int = 0,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.retry_after = retry_after


class _Unsupported(LLMError):
    pass


class _TooLarge(LLMError):
    """An answer past `MAX_ANSWER_BYTES`: not retried, as the same server would do it again."""


@dataclass
class _Exchange:
    status: int
    headers: httpx.Headers
    body: bytes


@dataclass
class Reply:
    data: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    latency: float  # seconds for the whole exchange, retries included
    attempts: int
    response_format: str


class Budget:
    """Per-run caps on requests and tokens, shared by threads. Each request reserves its
    worst case (estimated prompt + max output) before it is sent, so concurrent requests
    cannot overshoot the token cap together; the server's real usage is then booked."""

    def __init__(self, max_calls: int, max_tokens: int) -> None:
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._reserved = 0
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def reserve(self, tokens: int) -> None:
        with self._lock:
            if self.calls >= self.max_calls:
                raise BudgetExhausted(f"call budget of {self.max_calls} spent")
            if self.tokens + self._reserved + tokens > self.max_tokens:
                raise BudgetExhausted(f"token budget of {self.max_tokens} spent")
            self.calls += 1
            self._reserved += tokens

    def settle(self, reserved: int, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens


def parse_json(text: str) -> dict[str, Any] | None:
    """The JSON object in a model's text answer, with or without ```json fences."""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        value = json.loads(text[start:end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def response_format(kind: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if kind == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": "classification", "strict": True, "schema": schema}}
    if kind == "json_object":
        return {"type": "json_object", "schema": schema}  # llama.cpp's server enforces it
    return None


class LLMClient:
    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 60.0, retries: int = 2, backoff: float = 1.0,
                 max_output_tokens: int = 256) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_output_tokens = max_output_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # The event loop the requests run on, for every thread that calls. A daemon thread (an
        # anyio portal's is not one): a client nobody closed must not keep the process alive.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hybrid-llm",
                                        daemon=True)
        self._thread.start()
        self._http = httpx.AsyncClient(timeout=timeout, headers=headers)
        self._level = 0  # index in FORMATS of the best format the server has accepted
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"LLMClient({self.url!r}, model={self.model!r})"

    @property
    def response_format(self) -> str:
        return FORMATS[self._level]

    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._http.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any],
                 budget: Budget | None = None, estimate: int = 0) -> Reply:
        """One validated-JSON answer, or `LLMError` once the retries are spent."""
        started = time.perf_counter()
        level, attempts = self._level, 0
        while True:
            retrying = Retrying(retry=retry_if_exception_type(_Retryable),
                                stop=stop_after_attempt(self.retries + 1), wait=self._wait,
                                before_sleep=_log_retry, reraise=True)
            try:
                for attempt in retrying:
                    with attempt:
                        attempts += 1
                        data, used = self._budgeted(messages, schema, FORMATS[level], estimate,
                                                    budget)
            except _Unsupported as exc:
                if level + 1 >= len(FORMATS):
                    raise LLMError(str(exc)) from exc
                log.info("%s; retrying with response format %s", exc, FORMATS[level + 1])
                level += 1
                continue
            except _Retryable as exc:
                raise LLMError(f"{exc} (after {attempts} attempts)") from exc
            with self._lock:
                self._level = max(self._level, level)
            return Reply(data, used[0], used[1], time.perf_counter() - started, attempts,
                         FORMATS[level])

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, never shorter than the server's Retry-After."""
        delay = self.backoff * 2 ** (state.attempt_number - 1) * random.uniform(0.8, 1.2)
        exc = state.outcome.exception() if state.outcome else None
        return min(max(delay, getattr(exc, "retry_after", None) or 0.0), _MAX_DELAY)

    def _budgeted(self, messages: list[dict[str, str]], schema: dict[str, Any], kind: str,
                  estimate: int, budget: Budget | None
                  ) -> tuple[dict[str, Any], tuple[int, int]]:
        """One request within the budget: its worst case reserved first, its usage booked."""
        reserve = estimate + self.max_output_tokens
        if budget is not None:
            budget.reserve(reserve)
        used = (0, 0)
        try:
            data, used = self._attempt(messages, schema, kind, estimate)
            return data, used
        except _Retryable as exc:
            used = (exc.prompt_tokens, exc.completion_tokens)
            raise
        except _TooLarge:
            used = (estimate, self.max_output_tokens)  # unread: its worst case is booked
            raise
        finally:
            if budget is not None:
                budget.settle(reserve, *used)

    def _attempt(self, messages: list[dict[str, str]], schema: dict[str, Any], kind: str,
                 estimate: int) -> tuple[dict[str, Any], tuple[int, int]]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0,
                                "max_tokens": self.max_output_tokens}
        fmt = response_format(kind, schema)
        if fmt is not None:
            body["response_format"] = fmt
        reply = self._post(body)
        if reply.status >= 400:
            raise _http_error(reply, kind)
        content, usage, refusal = _message(reply.body, estimate)
        used = (_tokens(usage, "prompt_tokens", estimate),
                _tokens(usage, "completion_tokens", estimate_tokens(content)))
        if refusal:
            raise _Retryable(f"refusal: {str(refusal)[:100]}", *used)
        data = parse_json(content)
        if data is None:
            raise _Retryable("the answer is not a JSON object", *used)
        return data, used

    def _post(self, body: dict[str, Any]) -> _Exchange:
        try:
            return asyncio.run_coroutine_threadsafe(self._exchange(body), self._loop).result()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _Retryable(f"no complete answer within {self.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__})") from exc

    async def _exchange(self, body: dict[str, Any]) -> _Exchange:
        """One request, within `timeout` seconds in all, reading at most `MAX_ANSWER_BYTES`
        of the answer (decompressed)."""
        async with asyncio.timeout(self.timeout):
            async with self._http.stream("POST", self.url, json=body) as resp:
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        raise _TooLarge(f"an answer of more than {MAX_ANSWER_BYTES} bytes: "
                                        "not read further")
                return _Exchange(resp.status_code, resp.headers, bytes(data))


def _message(body: bytes, estimate: int) -> tuple[str, Any, Any]:
    """(content, usage, refusal) of an OpenAI-style answer; `_Retryable` for any other shape
    (the prompt was sent, so its estimate is booked)."""
    try:
        payload = json.loads(body)
        message = payload["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _Retryable("malformed response (no choices[0].message)", estimate) from exc
    if not isinstance(message, dict):
        raise _Retryable("malformed response (choices[0].message is not an object)", estimate)
    content = message.get("content")
    if not isinstance(content, str | None):
        raise _Retryable("malformed response (the message content is not text)", estimate)
    return content or "", payload.get("usage"), message.get("refusal")


def _tokens(usage: Any, key: str, estimate: int) -> int:
    """The tokens the server says a part took, but never fewer than estimated: a count that
    is missing, not a whole number, or below the estimate (-1000000) cannot defeat the
    budget."""
    reported = usage.get(key) if isinstance(usage, dict) else None
    if not isinstance(reported, int) or isinstance(reported, bool):
        reported = 0
    return max(reported, estimate, 0)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("LLM call failed (%s); retrying in %.1fs", exc, state.upcoming_sleep)


def _http_error(resp: _Exchange, kind: str) -> LLMError:
    code, text = resp.status, resp.body[:300].decode("utf-8", "replace")
    if code in (401, 403):
        return LLMFatal(f"HTTP {code} from the LLM server: check the API key and model access")
    transient = code in (408, 409, 429) or code >= 500
    if kind != "plain" and (not transient or _MENTIONS_FORMAT.search(text)):
        return _Unsupported(f"HTTP {code}: server does not accept response_format {kind}")
    if transient:
        retry_after = resp.headers.get("retry-after", "")
        return _Retryable(f"HTTP {code}",
                          retry_after=float(retry_after) if retry_after.isdigit() else None)
    return LLMError(f"HTTP {code}: {text[:200]}")
