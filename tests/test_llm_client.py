"""hybrid.llm.client (through the refiner): the request, the response-format ladder,
retries, the budget. Against a scripted OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time

import pytest
from llm_stub import LLAMA_REJECTION, TAXONOMY, answer, good, items, run
from llm_stub import settings as llm_settings

from hybrid.ingest.article import Article
from hybrid.learn.prediction import Prediction
from hybrid.llm.client import parse_json


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
    s = stub(lambda body, n: first if n == 1 else good(body, n))
    out, refiner = run(llm_settings(tmp_path, s.url), items(1))
    assert len(s.requests) == 2 and s.formats() == ["json_schema", "json_schema"]
    assert out[0].source == "llm" and out[0].llm["prompt_tokens"] == 100
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
