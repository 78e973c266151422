"""`hybrid serve` (hybrid.serve) over real HTTP on 127.0.0.1, started as a user starts it:
the answers are `tag-file`'s, batched or not; bad input of every kind is a JSON 4xx naming
the article and field; feedback lands as manual labels; the review queue is `review
export --select uncertain`'s; the LLM fallback keeps its deadline; SIGTERM drains."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from bson import Int64, ObjectId
from helpers import hybrid, records
from hypothesis import HealthCheck, Phase, given, settings
from llm_stub import answer
from serve_process import AUTH, start
from test_hostile_input import line

from hybrid.config import Config
from hybrid.ingest.ids import id_key, json_key, typed_json
from hybrid.ingest.records import read_jsonl
from hybrid.labels.sources import labelled_articles
from hybrid.mongo.store import Store

BAD = [{"id": "bad-type", "title": "t", "content": 12},
       {"id": "no-text", "title": " ", "content": ""},
       {"id": {"nested": 1}, "title": "id is an object"}, ["not", "an", "object"], "text"]


@pytest.fixture(scope="module")
def articles() -> list[dict]:
    """Every bundled article without its labels, and records `tag-file` gives errors."""
    return [*records(), *BAD]


@pytest.fixture(scope="module")
def mongo(tmp_path_factory, config) -> Config:
    from mongo_server import mongo_uri

    with mongo_uri(tmp_path_factory.mktemp("mongo")) as uri:
        settings = Config(cache_dir=config.cache_dir, mongo_uri=uri,
                          mongo_db=f"serve_{uuid.uuid4().hex[:8]}", mongo_timeout=5.0,
                          mongo_retry_seconds=5.0)
        with Store(settings) as store:
            store.import_records(records(40))
        yield settings


@pytest.fixture(scope="module")
def served(sample_model_dir, tmp_path_factory, mongo, cache_dir, tag_file_rows):
    """Two workers, the collection for feedback and the review queue, and a copy of the
    embedding cache `tag-file` read: a text embedded in another batch differs in the last
    bits of a float32, and a tree split of the tag ranker can sit that close to a training
    article's value (s101's 函数调用 at 0.3750843 scored 0.43 or 0.38). With the same
    vectors, what differs is only how requests are batched, which is what is tested; the
    copy keeps what serve writes out of the session's cache."""
    work = tmp_path_factory.mktemp("serve")
    (work / "cache").mkdir()
    with (closing(sqlite3.connect(f"file:{cache_dir / 'embeddings.sqlite'}?mode=ro",
                                  uri=True)) as source,
          closing(sqlite3.connect(work / "cache" / "embeddings.sqlite")) as copy):
        source.backup(copy)
    server = start(sample_model_dir, work / "cache", work, workers=2, env={
        "MONGODB_URI": mongo.mongo_uri, "HYBRID_MONGO_DB": mongo.mongo_db,
        "HYBRID_SERVE_TIMEOUT": "5"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tag_file_rows(articles, sample_model_dir, cache_dir, tmp_path_factory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("tag-file")
    infile, outfile = work / "in.jsonl", work / "out.jsonl"
    infile.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in articles) + "\n",
                      encoding="utf-8")
    result = hybrid("tag-file", str(infile), str(outfile), "--model", str(sample_model_dir),
                    cache_dir=cache_dir)
    assert result.exit_code == 3, result.output  # the BAD records
    rows = [r for r in read_jsonl(outfile)]
    assert len(rows) == len(articles)
    return rows


def same(row: dict, expected: dict) -> None:
    if "error" in expected:
        assert row.get("error") == expected["error"], (row, expected)
    else:
        assert {k: row[k] for k in ("id", "categories", "tags")} == expected, (row, expected)


def test_every_answer_is_tag_files_batched_across_requests_or_not(served, articles,
                                                                  tag_file_rows):
    with served.client() as client:
        def one(article: dict) -> httpx.Response:
            return client.post("/v1/suggest", json=article)

        with ThreadPoolExecutor(16) as pool:  # concurrent requests share batches
            singles = list(pool.map(one, articles))
        batches = [client.post("/v1/suggest-batch", json={"articles": articles[i:i + 64]})
                   for i in range(0, len(articles), 64)]
        metrics = client.get("/metrics").text
    for response, expected in zip(singles, tag_file_rows, strict=True):
        if "error" in expected:
            assert response.status_code == 422, response.text
            assert response.json()["detail"] == expected["error"]
        else:
            assert response.status_code == 200, response.text
            same(response.json(), expected)
    rows = [row for b in batches for row in b.json()["results"]]
    assert all(b.status_code == 200 for b in batches)
    for row, expected in zip(rows, tag_file_rows, strict=True):
        same(row, expected)
        assert row["model"]["taxonomy_fingerprint"] and row["model"]["created_at"]
    batched = [float(x.split()[-1]) for x in metrics.splitlines()
               if x.startswith("hybrid_batch_articles_bucket") and 'le="1.0"' in x]
    total = [float(x.split()[-1]) for x in metrics.splitlines()
             if x.startswith("hybrid_batch_articles_count")]
    assert total[0] > batched[0], "no two requests were ever predicted together"


def test_bad_input_of_every_kind_is_a_json_4xx_naming_article_and_field(served):
    with served.client() as c:
        def problem(response: httpx.Response, status: int) -> dict:
            assert response.status_code == status, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["status"] == status and "Traceback" not in response.text
            return body

        wrong = problem(c.post("/v1/suggest", json={"id": "w1", "title": "t", "content": 12}),
                        422)
        assert (wrong["article"], wrong["field"]) == ("w1", "content")
        assert wrong["detail"] == "article 'w1', field 'content': expected text, got int"
        assert problem(c.post("/v1/suggest", json={"id": "e", "content": " "}),
                       422)["field"] == "content"
        assert problem(c.post("/v1/suggest", json=[1, 2]), 422)["field"] == "<record>"
        deep = b'{"id": "deep", "content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert problem(c.post("/v1/suggest", content=deep), 422)["field"] == "<json>"
        assert problem(c.post("/v1/suggest", content=b'{"id": ' + b"9" * 5000 + b"}"),
                       422)["field"] == "<json>"
        assert problem(c.post("/v1/suggest", content=b"{not json"), 422)["field"] == "<json>"
        assert problem(c.post("/v1/suggest", content=b""), 422)["field"] == "<json>"
        assert problem(c.post("/v1/suggest?explain=maybe", json={"title": "x"}),
                       422)["field"] == "explain"
        big = b'{"title": "x", "content": "' + b"a" * 9_000_000 + b'"}'
        assert problem(c.post("/v1/suggest", content=big), 413)
        assert problem(c.post("/v1/suggest", content=iter([b'{"content": "', big])), 413)
        many = {"articles": [{"title": f"t{i}"} for i in range(65)]}
        assert problem(c.post("/v1/suggest-batch", json=many), 422)["field"] == "articles"
        assert problem(c.post("/v1/suggest-batch", json={"articles": "x"}),
                       422)["field"] == "articles"
        problem(c.get("/v1/nothing"), 404)
        problem(c.get("/v1/suggest"), 405)
        # invalid UTF-8 is read as tag-file reads it: repaired and flagged, not refused
        bad_utf8 = c.post("/v1/suggest", content=b'{"id": "u8", "title": "Redis \xff \xe6\x8c'
                                                 b'\x81\xe4\xb9\x85\xe5\x8c\x96"}')
        assert bad_utf8.status_code == 200 and "invalid_unicode:title" in bad_utf8.json()[
            "flags"]
        assert c.get("/v1/ready").status_code == 200


def test_hypothesis_bodies_get_an_answer_or_a_4xx_never_a_5xx(served):
    bodies: list[bytes] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(line())
    def collect(raw: bytes) -> None:
        bodies.append(raw)

    collect()
    with served.client() as c, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda b: c.post("/v1/suggest", content=b), bodies))
        batch = c.post("/v1/suggest-batch", content=b'{"articles": [' + b", ".join(
            b for b in bodies[:64] if b.strip().startswith(b"{") and b"\xff" not in b) + b"]}")
    assert {r.status_code for r in responses} <= {200, 422}, [r.text for r in responses
                                                             if r.status_code >= 500]
    assert sum(r.status_code == 200 for r in responses) > 20
    assert batch.status_code in (200, 422), batch.text


def test_a_body_that_stops_arriving_is_cut_off(served):
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/suggest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 1000\r\n\r\n{\"title\": \"")
        started = time.monotonic()
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert 4 < time.monotonic() - started < 15


def test_keys_cors_docs_and_metrics(served):
    with served.client() as c:
        assert c.post("/v1/feedback", json={}).status_code == 401
        assert c.post("/v1/feedback", json={}, headers={"Authorization": "Bearer no"}
                      ).status_code == 401
        assert c.post("/v1/admin/reload").headers["www-authenticate"] == "Bearer"
        assert c.get("/v1/review").status_code == 401
        preflight = c.options("/v1/suggest", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers
        assert "swagger-ui" in c.get("/docs").text
        assert c.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/v1/suggest", "/v1/suggest-batch", "/v1/feedback", "/v1/admin/reload",
                "/v1/health", "/v1/ready", "/v1/model"} <= set(paths)
        model = c.get("/v1/model").json()
        assert {"taxonomy_fingerprint", "categories", "metrics", "created_at", "embedder"
                } <= set(model) and model["workers"] == 2
        assert c.get("/v1/health").json()["status"] == "ok"
        metrics = c.get("/metrics").text
        page = c.get("/")
    assert served.url.startswith("http://127.0.0.1:")
    for name in ("hybrid_http_requests_total", "hybrid_http_request_seconds_bucket",
                 "hybrid_http_errors_total", "hybrid_model_info"):
        assert name in metrics
    assert 'route="/v1/suggest",status="422"' in metrics
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<html lang="zh-CN">' in page.text


def test_feedback_is_stored_as_manual_labels_training_learns_from(served, mongo):
    doc_id = records(40)[7]["id"]
    with served.client(headers=AUTH) as c:
        saved = c.post("/v1/feedback", json={"id": doc_id, "categories": ["DB", "人工智能"],
                                             "tags": ["redis", "持久化"]})
        unknown = c.post("/v1/feedback", json={"id": doc_id, "categories": ["区块链"]})
        missing = c.post("/v1/feedback", json={"id": "nope", "categories": ["数据库"]})
        typed = c.post("/v1/feedback", json={"id": doc_id, "categories": "数据库"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["categories"] == ["数据库", "人工智能"]  # aliases resolved
    assert unknown.status_code == 422 and unknown.json()["field"] == "categories"
    assert "区块链" in unknown.json()["detail"]
    assert missing.status_code == 404 and missing.json()["article"] == "nope"
    assert typed.status_code == 422 and typed.json()["field"] == "categories"
    with Store(mongo) as store:
        doc = store.articles.find_one({"_id": doc_id})
    assert (doc["categories"], doc["tags"], doc["hybrid"]["source"]) == (
        ["数据库", "人工智能"], ["redis", "持久化"], "manual")
    learned = {a.id: a for a in labelled_articles(mongo, label_source="manual")}
    assert learned[doc_id].categories == ["数据库", "人工智能"]


def test_feedback_is_checked_as_review_import_checks_it(served, mongo):
    doc_id = records(40)[8]["id"]
    with served.client(headers=AUTH) as c:
        many = c.post("/v1/feedback", json={"id": doc_id, "categories": [
            "数据库", "人工智能", "编程语言", "前端开发"]})
        script = c.post("/v1/feedback", json={"id": doc_id, "categories": ["数据库"],
                                              "tags": ["redis", "<script>alert(1)</script>"]})
        formula = c.post("/v1/feedback", json={"id": doc_id, "categories": ["数据库"],
                                               "tags": ["=cmd|calc"]})
        with Store(mongo) as store:
            untouched = store.articles.find_one({"_id": doc_id})
        cleaned = c.post("/v1/feedback", json={"id": doc_id, "categories": ["数据库"],
                                               "tags": [" Redis ", "redis", "ＳＱＬ"]})
    for refused, field, said in ((many, "categories", "at most 3"),
                                 (script, "tags", "<script>"), (formula, "tags", "=cmd|calc")):
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert (problem["article"], problem["field"]) == (doc_id, field)
        assert problem["detail"].startswith(f"article {doc_id!r}, field '{field}'")
        assert said in problem["detail"]
    assert cleaned.status_code == 200 and cleaned.json()["tags"] == ["Redis", "SQL"]
    with Store(mongo) as store:
        after = store.articles.find_one({"_id": doc_id})
    assert (after["categories"], after["tags"]) == (["数据库"], ["Redis", "SQL"])
    assert "categories" not in untouched and "hybrid" not in untouched  # nothing refused stored


def test_feedback_names_an_article_by_its_typed_id_and_never_guesses(served, mongo):
    """`_id`s of several types, two of which print alike (1 and "1"): each is labelled by
    its typed `_id` (Extended JSON, relaxed or canonical); a bare text that names both
    labels neither."""
    oid, big = ObjectId(), Int64(2**53 + 1)  # a number JavaScript cannot hold exactly
    ids = [1, "1", oid, big]
    with Store(mongo) as store:
        store.articles.insert_many([{**{k: v for k, v in r.items() if k != "id"}, "_id": i}
                                    for r, i in zip(records(4, salt="typed"), ids,
                                                    strict=True)])
    with served.client(headers=AUTH) as c:
        def send(categories: list[str], **named) -> httpx.Response:
            return c.post("/v1/feedback", json={**named, "categories": categories})

        answers = [send(["数据库"], _id=1), send(["编程语言"], _id="1"),
                   send(["人工智能"], id={"$oid": str(oid)}),
                   send(["前端开发"], _id=typed_json(id_key(big)))]
        ambiguous = send(["移动开发"], id="1")
        by_hex = send(["后端开发", "人工智能"], id=str(oid))  # a CMS's own id: one article
        refused = [send(["数据库"], _id=[1]), send(["数据库"], _id={"$gt": 0}),
                   send(["数据库"], _id={"$regex": "."}), send(["数据库"], _id=1, id="1"),
                   send(["数据库"], _id="2")]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert [a.json()["id"] for a in answers] == [id_key(i) for i in ids]
    assert ambiguous.status_code == 422 and ambiguous.json()["field"] == "id"
    assert 'names 2 articles (1, "1")' in ambiguous.json()["detail"]
    assert by_hex.status_code == 200 and by_hex.json()["id"] == id_key(oid)
    assert [r.status_code for r in refused] == [422, 422, 422, 422, 404], \
        [r.text for r in refused]
    assert [r.json().get("field") for r in refused[:4]] == ["_id"] * 4
    with Store(mongo) as store:
        stored = {id_key(d["_id"]): d["categories"]
                  for d in store.articles.find({"_id": {"$in": ids}})}
    assert stored == {"1": ["数据库"], '"1"': ["编程语言"], id_key(oid): ["后端开发", "人工智能"],
                      id_key(big): ["前端开发"]}


def test_the_review_queue_is_review_exports_choice(served, mongo, sample_model_dir, tmp_path):
    out = tmp_path / "review.jsonl"
    exported = hybrid("review", "export", "--select", "uncertain", "--model",
                      str(sample_model_dir), "--out", str(out),
                      cache_dir=mongo.cache_dir, environ={
                          "MONGODB_URI": mongo.mongo_uri, "HYBRID_MONGO_DB": mongo.mongo_db})
    assert exported.exit_code == 0, exported.output
    expected = [json_key(r["_id"]) for r in read_jsonl(out)]  # typed, relaxed
    with served.client(headers=AUTH) as c:
        queue = review_queue(c)
        assert [r["id"] for r in queue] == expected
        assert queue[0]["excerpt"] and queue[0]["suggested_categories"]
        first = queue[0]
        assert all(r["_id"] == typed_json(r["id"]) and json_key(r["_id"]) == r["id"]
                   for r in queue)  # the typed _id, canonical
        assert c.post("/v1/feedback", json={"_id": first["_id"], "categories": first[
            "suggested_categories"]}).status_code == 200  # sent back as the page does
        after = review_queue(c)
    assert first["id"] not in [r["id"] for r in after]


def review_queue(client: httpx.Client) -> list[dict]:
    """Asked again while the server says it is still choosing (503, Retry-After)."""
    deadline = time.monotonic() + 120
    while True:
        response = client.get("/v1/review", params={"limit": 100})
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()["articles"]
        assert response.headers["retry-after"]
        time.sleep(0.5)


def test_sigterm_drains_the_requests_in_flight(served, articles):
    """Last in this module: it stops the server. Every request the server had accepted is
    answered in full; only connections tried after SIGTERM are refused."""
    good = [a for a in articles if isinstance(a, dict) and isinstance(a.get("id"), str)][:60]
    results: list[httpx.Response | Exception] = []

    def post() -> None:
        try:
            with served.client() as c:
                results.append(c.post("/v1/suggest-batch", json={"articles": good}))
        except httpx.TransportError as exc:
            results.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    with served.client() as c:
        deadline = time.monotonic() + 10
        while queued(c.get("/metrics").text) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
    served.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    assert served.proc.wait(60) == -signal.SIGTERM
    answered = [r for r in results if isinstance(r, httpx.Response)]
    assert len(answered) >= 2, results
    assert all(isinstance(r, httpx.ConnectError) for r in results if r not in answered)
    assert all(r.status_code == 200 and len(r.json()["results"]) == len(good)
               for r in answered)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.url}/v1/health", timeout=5)


def queued(metrics: str) -> float:
    return next(float(x.split()[-1]) for x in metrics.splitlines()
                if x.startswith("hybrid_queued_articles "))


@pytest.fixture
def llm_served(sample_model_dir, tmp_path, stub):
    """The LLM fallback on for every article (threshold above 1), with a 0.5 s deadline,
    against a stub that answers at once, or after 3 s for titles that say "slow"; and the
    other settings that are off by default: CORS for one origin, the key for suggestions."""
    def respond(body: dict, n: int):
        if "slow" in json.dumps(body, ensure_ascii=False):
            time.sleep(3)
        return answer({"categories": ["数据库"], "tags": ["Redis"]})

    s = stub(respond)
    server = start(sample_model_dir, tmp_path / "cache", tmp_path, "--llm-mode", "fallback",
                   "--llm-base-url", s.url, "--llm-model", "stub", "--llm-threshold", "1.01",
                   "--llm-unchecked",
                   env={"HYBRID_SERVE_LLM_DEADLINE": "0.5", "HYBRID_LLM_RETRIES": "0",
                        "HYBRID_SERVE_CORS_ORIGINS": "https://admin.example.org",
                        "HYBRID_SERVE_SUGGEST_ACCESS": "key"})
    yield server
    server.stop()


def test_a_slow_llm_gives_the_models_answer_in_time_flagged(llm_served):
    with llm_served.client() as c:
        assert c.post("/v1/suggest", json={"title": "Redis"}).status_code == 401
        preflight = c.options("/v1/suggest", headers={
            "Origin": "https://admin.example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.headers["access-control-allow-origin"] == "https://admin.example.org"
        assert "access-control-allow-origin" not in c.options("/v1/suggest", headers={
            "Origin": "https://other.example.org", "Access-Control-Request-Method": "POST"
        }).headers
    with llm_served.client(headers=AUTH) as c:
        fast = c.post("/v1/suggest", json={"id": "f", "title": "Redis 缓存与持久化"}).json()
        started = time.monotonic()
        slow = c.post("/v1/suggest", json={"id": "s", "title": "slow Redis 持久化"})
        took = time.monotonic() - started
    assert fast["source"] == "llm" and fast["categories"] == ["数据库"]
    assert fast["llm"]["classifier"]["categories"]
    assert slow.status_code == 200 and took < 2.5, took
    assert slow.json()["source"] == "model" and slow.json()["llm"]["status"] == "timeout"
    assert slow.json()["categories"]
    with llm_served.client(headers=AUTH) as c:
        policy = c.get("/v1/model").json()["llm_policy"]
    assert policy["unchecked"] and "has not been checked" in policy["check"]
    assert "the LLM fallback is UNCHECKED (--llm-unchecked)" in llm_served.log.read_text()


def test_an_unchecked_llm_fallback_is_refused_before_the_model_loads(sample_model_dir, tmp_path,
                                                                    stub):
    s = stub()
    result = hybrid("serve", "--model", str(sample_model_dir), "--port", "0", "--llm-mode",
                    "fallback", "--llm-base-url", s.url, "--llm-model", "stub",
                    cache_dir=tmp_path)
    assert result.exit_code == 2 and not s.requests
    assert f"hybrid llm check --model {sample_model_dir}" in result.output
    assert "--llm-unchecked" in result.output


def test_a_port_in_use_and_a_corrupt_model_are_one_line_errors(sample_model_dir, tmp_path):
    """And the pinned model copies of a server that was killed are removed."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"hybrid-serve-{gone.pid}-1-"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(sample_model_dir).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "classifier.pickle").write_bytes(b"not a pickle")
    result = hybrid("serve", "--model", str(broken), "--port", "0", cache_dir=tmp_path)
    assert result.exit_code == 4 and "checksum" in result.output
    assert not stale.exists()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        result = hybrid("serve", "--model", str(sample_model_dir), "--port",
                        str(sock.getsockname()[1]), cache_dir=tmp_path)
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1" in result.output
    assert "Traceback" not in result.output
