"""`hybrid serve` under load (hybrid.serve.pool, batching, generation): a reload in the
middle of a stream of requests fails none of them; a corrupt, tampered or foreign-taxonomy
model is refused while the old one serves; SIGHUP reloads a directory the nightly retrain
rewrote; a worker that dies is replaced; 1,000 connections at once are all answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from helpers import pool_workers, records
from serve_process import AUTH, start

from hybrid import data
from hybrid.ingest.records import load_articles
from hybrid.learn import artifacts
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def models(sample_model_dir, config, tmp_path_factory) -> dict:
    """The served directory (a copy, rewritten in place as the nightly retrain does), the
    same model saved again (a new creation time), and three that must be refused."""
    root = tmp_path_factory.mktemp("models")
    served = root / "served"
    shutil.copytree(sample_model_dir, served)
    newer = root / "newer"
    HybridModel.load(sample_model_dir, config=config).save(newer)
    corrupt = root / "corrupt"
    shutil.copytree(sample_model_dir, corrupt)
    (corrupt / "tagger.pickle").write_bytes(b"\x80\x05garbage")
    tampered = root / "tampered"
    shutil.copytree(sample_model_dir, tampered)
    manifest = json.loads((tampered / "manifest.json").read_text(encoding="utf-8"))
    manifest["metrics"]["accuracy_top1"] = 1.0
    (tampered / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    unloadable = root / "unloadable"  # verifies, but names an embedder it was not made with
    model = HybridModel.load(sample_model_dir, config=config)
    model.settings["embedder"] = "sentence-transformers:/nonexistent"
    model.save(unloadable)
    foreign = root / "foreign"  # a zero-shot model for another category list
    HybridModel.train(load_articles(data.path("sample_articles.jsonl"), config)[:4],
                      load_taxonomy(data.path("sample_taxonomy_v2.json")), config).save(foreign)
    return {"served": served, "newer": newer, "corrupt": corrupt, "tampered": tampered,
            "foreign": foreign, "unloadable": unloadable}


@pytest.fixture(scope="module")
def served(models, cache_dir, tmp_path_factory):
    server = start(models["served"], cache_dir, tmp_path_factory.mktemp("serve"), workers=2)
    yield server
    server.stop()


async def load(url: str, articles: list[dict], requests: int, concurrency: int,
               during: float | None = None, action=None) -> list[httpx.Response | Exception]:
    """`requests` suggestions, `concurrency` at a time; `action()` once `during` of them
    are answered. Every outcome is kept: a response, or the exception instead of one."""
    results: list[httpx.Response | Exception] = []
    todo = iter(range(requests))
    acted = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def user() -> None:
            for i in todo:
                try:
                    results.append(await client.post("/v1/suggest",
                                                     json=articles[i % len(articles)]))
                except httpx.HTTPError as exc:
                    results.append(exc)
                if action and not acted.is_set() and len(results) >= during * requests:
                    acted.set()
                    await action(client)

        await asyncio.wait_for(asyncio.gather(*(user() for _ in range(concurrency))), 300)
    return results


class MostWorkers:
    """The most model processes alive at once in `pid`'s pool, sampled every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.most = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            with contextlib.suppress(psutil.Error):
                alive = [w for w in pool_workers(self.pid)
                         if w.status() != psutil.STATUS_ZOMBIE]
                self.most = max(self.most, len(alive))

    def __enter__(self) -> MostWorkers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def test_a_reload_under_load_fails_no_request(served, models):
    """And memory never holds more model processes than `--workers`: a retired worker
    exits (after its batch) before its replacement loads."""
    articles = records()
    outcome = {}

    async def reload(client: httpx.AsyncClient) -> None:
        outcome["reload"] = await client.post("/v1/admin/reload", headers=AUTH,
                                              json={"model": str(models["newer"])})

    with MostWorkers(served.proc.pid) as workers:
        results = asyncio.run(load(served.url, articles, 500, 8, during=0.2, action=reload))
    assert workers.most == 2
    failed = [r for r in results if not isinstance(r, httpx.Response) or r.status_code != 200]
    assert failed == [] and len(results) == 500
    assert outcome["reload"].status_code == 200, outcome["reload"].text
    reloaded = outcome["reload"].json()
    assert reloaded["status"] == "reloaded" and reloaded["model"]["generation"] == 2
    created = artifacts.read_manifest(models["newer"])["created_at"]
    served_by = [r.json()["model"] for r in results]
    assert served_by[0]["generation"] == 1 and served_by[-1] == reloaded["model"]
    assert served_by[-1]["created_at"] == created
    with served.client() as c:
        assert c.get("/v1/model").json()["source"] == str(models["newer"])
        assert 'hybrid_reloads_total{outcome="reloaded"} 1.0' in c.get("/metrics").text


@pytest.mark.parametrize("kind, says", [("corrupt", "checksum"), ("tampered", "digest"),
                                        ("foreign", "trained for taxonomy"),
                                        ("unloadable", "trained with embedder")])
def test_a_bad_model_is_refused_and_the_old_one_serves(served, models, kind, says):
    """The first three fail verification; the last loads in a worker, which fails, after an
    old worker retired for it: the old model serves on, and both workers are back."""
    with served.client(headers=AUTH) as c:
        before = c.get("/v1/ready").json()["model"]
        refused = c.post("/v1/admin/reload", json={"model": str(models[kind])})
        assert refused.status_code == 422, refused.text
        assert says in refused.json()["detail"] and "still serving" in refused.json()["detail"]
        assert c.get("/v1/ready").json()["model"] == before
        answer = c.post("/v1/suggest", json={"title": "Redis 持久化"})
        assert answer.status_code == 200 and answer.json()["model"] == before
        deadline = time.monotonic() + 60
        while c.get("/v1/ready").json()["workers"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    pinned = [p.name.split("-")[3] for p in Path(tempfile.gettempdir()).iterdir()
              if p.name.startswith(f"hybrid-serve-{served.proc.pid}-")]
    assert pinned == [str(before["generation"])]  # no copy of a refused model is left


def test_sighup_reloads_the_directory_the_nightly_retrain_rewrote(served, models, config):
    """SIGHUP reads the directory served now again (here the one the reload test chose)."""
    with served.client() as c:
        before = c.get("/v1/ready").json()["model"]
        source = c.get("/v1/model").json()["source"]
        time.sleep(1)  # a creation time of its own (seconds)
        HybridModel.load(models["served"], config=config).save(source)
        created = artifacts.read_manifest(source)["created_at"]
        served.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while (now := c.get("/v1/ready").json()["model"])["generation"] == before["generation"]:
            assert time.monotonic() < deadline, served.text()
            time.sleep(0.1)
        assert now["created_at"] == created and now != before
        assert c.get("/v1/model").json()["source"] == source


def test_a_worker_that_dies_is_replaced_and_no_request_fails(served):
    workers = [w for w in pool_workers(served.proc.pid) if w.status() != psutil.STATUS_ZOMBIE]
    assert len(workers) == 2  # the workers of the models before have exited
    articles = records()

    async def kill(client: httpx.AsyncClient) -> None:
        os.kill(workers[0].pid, signal.SIGKILL)

    results = asyncio.run(load(served.url, articles, 200, 8, during=0.3, action=kill))
    assert all(isinstance(r, httpx.Response) and r.status_code == 200 for r in results)
    with served.client() as c:
        deadline = time.monotonic() + 60
        while c.get("/v1/ready").json()["workers"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert not workers[0].is_running()


def test_a_thousand_connections_at_once_are_all_answered(served):
    """Bounded in count (1,000) and time (120 s), on 127.0.0.1 only. The queue takes what
    it can answer in time; the rest are told to come back (503, Retry-After), at once."""
    async def storm() -> list[httpx.Response | Exception]:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=served.url, timeout=120, limits=limits) as client:
            async def one(i: int) -> httpx.Response | Exception:
                try:
                    return await client.post("/v1/suggest", json={
                        "id": f"c{i}", "title": f"并发连接 {i}", "content": "Redis 持久化"})
                except httpx.HTTPError as exc:
                    return exc
            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1000))), 120)

    started = time.monotonic()
    results = asyncio.run(storm())
    took = time.monotonic() - started
    errors = [r for r in results if not isinstance(r, httpx.Response)]
    assert errors == [], errors[:3]
    statuses = [r.status_code for r in results]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 500, statuses
    busy = [r for r in results if r.status_code == 503]
    assert all(r.json()["status"] == 503 and r.headers["retry-after"] for r in busy)
    assert took < 120
    with served.client() as c:
        assert c.get("/v1/ready").status_code == 200
    tree = [psutil.Process(served.proc.pid), *psutil.Process(served.proc.pid).children(True)]
    assert sum(p.memory_info().rss for p in tree) < 2.5e9
