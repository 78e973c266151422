"""hybrid.llm.client (through the refiner): the request, the response-format ladder,
retries, the budget, and what a hostile server cannot do (hold a call, flood memory, defeat
the budget). Against a scripted OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import tracemalloc

import pytest
from llm_stub import LLAMA_REJECTION, TAXONOMY, Drip, answer, good, items, run
from llm_stub import settings as llm_settings

from hybrid.ingest.article import Article
from hybrid.learn.prediction import Prediction
from hybrid.llm.client import MAX_ANSWER_BYTES, parse_json


def test_request_is_strict_json_schema_with_enum_hints_and_truncated_article(tmp_path, stub):
    s = stub()
    long = Article("long", "Redis", "", "缓存" * 5000)
    pred = Prediction("long", categories=["前端开发"], confidence=0.1,
                      scores={"前端开发": 0.4, "数据库": 0.3, "安全最佳实践": 0.1})
    out, _ = run(llm_settings(tmp_path, s.url, llm_article_tokens=300), [(long, None, pred)])
    body = s.requests[0]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["properties"]["categories"]["items"]["enum"] == TAXONOMY.names
    assert schema["properties"]["tags"]["maxItems"] == 5
    system, user = (m["content"] for m in body["messages"])
    assert all(c.name in system and c.description in system for c in TAXONOMY.categories)
    assert "前端开发 (0.40), 数据库 (0.30), 安全最佳实践 (0.10)" in user
    assert user.count("缓存") < 350  # cut to the token budget
    assert out[0].source == "llm" and out[0].categories == ["数据库"]
    assert out[0].llm["response_format"] == "json_schema"
    assert out[0].llm["classifier"] == {"categories": ["前端开发"], "tags": []}


def test_server_rejecting_json_schema_gets_json_object_then_keeps_it(tmp_path, stub):
    def llama_like(body, n):
        if body.get("response_format", {}).get("type") == "json_schema":
            return LLAMA_REJECTION
        assert body["response_format"]["schema"]["properties"]["categories"]["items"]["enum"]
        return good(body, n)

    s = stub(llama_like)
    out, refiner = run(llm_settings(tmp_path, s.url, llm_retries=0), items(3))
    assert s.formats() == ["json_schema", "json_object", "json_object", "json_object"]
    assert all(p.source == "llm" for p in out)
    assert refiner.stats.response_format == "json_object" and refiner.stats.calls == 4


def test_plain_json_in_fences_when_no_response_format_is_accepted(tmp_path, stub):
    def old_server(body, n):
        if "response_format" in body:
            return 400, {"error": {"message": "response_format is not supported"}}
        return answer('Sure!\n```json\n{"categories": ["Database"], "tags": ["Redis"]}\n```')

    s = stub(old_server)
    out, _ = run(llm_settings(tmp_path, s.url), items(1))
    assert s.formats() == ["json_schema", "json_object", "plain"]
    assert out[0].categories == ["数据库"] and out[0].tags == ["Redis"]
    assert parse_json("no json here") is None and parse_json("[1, 2]") is None


@pytest.mark.parametrize("first", [
    (429, {"error": "rate limited"}),
    (503, {"error": "overloaded"}),
    answer("this is not JSON"),
    answer("", refusal="I can't help with that"),
], ids=["429", "5xx", "invalid-json", "refusal"])
def test_transient_failures_are_retried(tmp_path, stub, first):
    s = stub(lambda body, n: first if n == 1 else answer(
        {"categories": ["数据库"], "tags": ["Redis"]}, prompt_tokens=5000))
    out, refiner = run(llm_settings(tmp_path, s.url), items(1))
    assert len(s.requests) == 2 and s.formats() == ["json_schema", "json_schema"]
    assert out[0].source == "llm" and out[0].llm["prompt_tokens"] == 5000
    assert refiner.stats.calls == 2


def test_timeout_is_retried(tmp_path, stub):
    def slow_once(body, n):
        if n == 1:
            time.sleep(1.0)
        return good(body, n)

    s = stub(slow_once)
    out, _ = run(llm_settings(tmp_path, s.url, llm_timeout=0.3), items(1))
    assert len(s.requests) == 2 and out[0].source == "llm"


def test_bad_api_key_disables_the_llm_and_the_key_is_never_logged(tmp_path, stub, caplog,
                                                                  monkeypatch):
    monkeypatch.setenv("HYBRID_LLM_API_KEY", "sk-secret-123")
    s = stub(lambda body, n: (401, {"error": "invalid api key"}))
    caplog.set_level(logging.DEBUG)
    out, refiner = run(llm_settings(tmp_path, s.url), items(3))
    assert s.headers[0]["Authorization"] == "Bearer sk-secret-123"
    assert len(s.requests) == 1
    assert [p.llm["status"] for p in out] == ["error", "unavailable", "unavailable"]
    assert "sk-secret" not in caplog.text + repr(refiner.asker.client) + json.dumps(
        [p.llm for p in out]) + repr(refiner.config)


def test_call_budget_stops_calls_at_the_limit(tmp_path, stub):
    s = stub()
    out, refiner = run(llm_settings(tmp_path, s.url, llm_max_calls=2, llm_concurrency=3), items(5))
    assert len(s.requests) == 2 and refiner.stats.calls == 2
    assert refiner.stats.over_budget == 3
    assert sorted(p.source for p in out) == ["llm", "llm", "model", "model", "model"]


def test_token_budget_stops_calls_before_the_limit_is_passed(tmp_path, stub):
    s = stub()  # each answer books 110 tokens; each request reserves its estimate + 256
    _, refiner = run(llm_settings(tmp_path, s.url, llm_max_tokens=800), items(5))
    assert refiner.stats.prompt_tokens + refiner.stats.completion_tokens <= 800
    assert 1 <= len(s.requests) < 5 and refiner.stats.over_budget == 5 - len(s.requests)


def test_the_timeout_bounds_the_whole_call_not_each_read(tmp_path, stub):
    """A server that sends a byte every 0.1 s never lets a read time out; the call still ends
    at llm_timeout, and its answer is not taken."""
    _, payload = good({}, 1)
    s = stub(lambda body, n: (200, Drip([b" "] * 40 + [json.dumps(payload).encode()], 0.1)))
    started = time.monotonic()
    out, refiner = run(llm_settings(tmp_path, s.url, llm_timeout=1, llm_retries=0), items(1))
    assert time.monotonic() - started < 2.5
    assert out[0].source == "model" and out[0].llm["status"] == "error"
    assert "no complete answer within 1s" in out[0].llm["error"] and refiner.stats.errors == 1


def test_an_answer_past_the_size_cap_is_not_read_on_nor_retried(tmp_path, stub):
    """50 MB of answer: the client stops reading at MAX_ANSWER_BYTES and keeps its memory."""
    head, tail = json.dumps(answer('{"categories": ["Database"], "x": "@"')[1]).split("@")
    s = stub(lambda body, n: (200, Drip([head.encode(), *[b"a" * 65536] * 800,
                                         tail.encode()])))
    tracemalloc.start()
    try:
        out, refiner = run(llm_settings(tmp_path, s.url), items(1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out[0].source == "model" and out[0].llm["status"] == "error"
    assert f"more than {MAX_ANSWER_BYTES} bytes" in out[0].llm["error"]
    assert len(s.requests) == 1 and peak < 10 * MAX_ANSWER_BYTES
    deadline = time.monotonic() + 10
    while not s.broken:  # the rest of the answer was never read
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert refiner.stats.prompt_tokens > 0 and refiner.stats.completion_tokens == 256


def test_only_the_answers_categories_and_tags_are_kept(tmp_path, stub):
    s = stub(lambda body, n: answer({"categories": ["Database", 7, "x" * 5000],
                                     "tags": ["Redis", {"a": 1}], "notes": "x" * 100_000,
                                     "reasoning": ["..."] * 1000}))
    out, _ = run(llm_settings(tmp_path, s.url), items(1))
    assert out[0].categories == ["数据库"] and out[0].tags == ["Redis"]
    with sqlite3.connect(tmp_path / "llm.sqlite") as db:
        (stored,), = db.execute("SELECT answer FROM answers").fetchall()
    assert json.loads(stored)["data"] == {"categories": ["Database"], "tags": ["Redis"]}
    again, _ = run(llm_settings(tmp_path, s.url), items(1))
    assert len(s.requests) == 1 and again[0].output() == out[0].output()


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -1_000_000, "completion_tokens": -5},
    {"prompt_tokens": "lots"},
    "none",
    None,
], ids=["negative", "not-a-number", "not-an-object", "missing"])
def test_reported_usage_never_books_less_than_the_estimate(tmp_path, stub, usage):
    """Usage is max(reported, estimated): the token cap holds whatever the server says."""
    def respond(body, n):
        status, payload = good(body, n)
        return status, {**payload, "usage": usage}

    s = stub(respond)
    out, refiner = run(llm_settings(tmp_path, s.url, llm_max_tokens=3000), items(16))
    booked = refiner.stats.prompt_tokens + refiner.stats.completion_tokens
    assert 1 <= len(s.requests) < 16 and refiner.stats.over_budget == 16 - len(s.requests)
    assert 0 < booked <= 3000 and refiner.stats.errors == 0
    answered = [p.llm for p in out if p.source == "llm"]
    assert len(answered) == len(s.requests)
    assert all(a["prompt_tokens"] > 100 and a["completion_tokens"] > 0 for a in answered)
