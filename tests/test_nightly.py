"""hybrid.batch.nightly (`hybrid run`) against a real wire-protocol server, with real pymongo.

SecantusDB in-process or as a child process, or a real mongod when MONGODB_TEST_URI is set
(the server-stop test always uses SecantusDB, as it must stop the server)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner
from helpers import (
    BSON_IDS,
    OWNED,
    STATE_KEYS,
    assert_tagged,
    cron,
    dump,
    env,
    error_lines,
    job,
    pool_workers,
    records,
    subprocess_run,
    terminate_midway,
    wait_for_checkpoint,
)
from llm_stub import answer
from mongo_server import kill_server_process, start_server_process, stop_server_process

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit
from hybrid.ingest.ids import id_key
from hybrid.learn.artifacts import read_manifest
from hybrid.mongo.runs import Selection
from hybrid.mongo.store import Store, now


def test_run_tags_new_articles_and_writes_only_the_fields_it_owns(store, mongo_config,
                                                                  sample_model_dir):
    store.import_records(records(20))
    before = dump(store, owned=False)
    result = cron(mongo_config, "run", "--model", str(sample_model_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("run ") and "seen 20, tagged 20, unchanged 0" in result.stdout
    assert dump(store, owned=False) == before
    taxonomy = set(read_manifest(sample_model_dir)["categories"])
    for doc in dump(store).values():
        assert_tagged(doc, mongo_config)
        assert set(doc["categories"]) <= taxonomy
        scores = [s["score"] for s in doc["hybrid"]["scores"]]
        assert len(scores) == len(taxonomy) and scores == sorted(scores, reverse=True)
    report = store.runs.find_one()
    assert report["status"] == "completed" and report["checkpoint"] == max(before)
    assert report["counts"]["tagged"] == 20 and report["seconds"] > 0
    assert sum(c["count"] for c in report["categories"]) >= 20
    assert report["articles_per_second"] > 0
    assert store.leases.count_documents({}) == 0


def test_second_run_tags_nothing_and_changes_nothing(store, mongo_config, sample_model_dir):
    store.import_records(records(20))
    assert job(mongo_config, sample_model_dir).counts["tagged"] == 20
    before = dump(store)
    report = job(mongo_config, sample_model_dir)
    assert (report.counts["tagged"], report.counts["unchanged"]) == (0, 20)
    assert dump(store) == before


def test_edits_are_retagged_and_an_edit_during_the_run_is_not_overwritten(
        store, mongo_config, sample_model_dir):
    store.import_records(records(20))
    raced: list[str] = []

    def edit_while_predicting(pairs):  # runs between the model and the write
        if not raced:
            raced.extend(article.id for article, _ in pairs[:2])
            store.articles.update_one({"_id": raced[0]}, {"$set": {"content": "改过的正文"}})
            store.articles.update_one({"_id": raced[1]}, {"$set": {"hybrid.locked": True}})
        return [prediction for _, prediction in pairs]

    report = job(mongo_config, sample_model_dir, refine=edit_while_predicting)
    assert (report.counts["tagged"], report.counts["conflicts"]) == (18, 2)
    edited, locked = (store.articles.find_one({"_id": i}) for i in raced)
    assert "categories" not in edited and edited["content"] == "改过的正文"
    assert "categories" not in locked and locked["hybrid"] == {"locked": True}

    report = job(mongo_config, sample_model_dir)
    assert report.counts["tagged"] == 1 and report.counts["skipped_manual"] == 1
    assert_tagged(store.articles.find_one({"_id": raced[0]}), mongo_config)
    store.articles.update_one({"_id": "s010"}, {"$set": {"title": "新标题"}})
    assert job(mongo_config, sample_model_dir).counts["tagged"] == 1


def test_manual_and_locked_labels_survive_a_run_with_all(store, mongo_config, sample_model_dir):
    store.import_records(records(12))
    manual = {"categories": ["数据库"], "tags": ["人工"], "hybrid": {"source": "manual"}}
    locked = {"categories": ["移动开发"], "tags": ["锁定"],
              "hybrid": {"source": "model", "locked": True, "content_hash": "old"}}
    store.articles.update_many({"_id": {"$in": ["s001", "s002"]}}, {"$set": manual})
    store.articles.update_one({"_id": "s003"}, {"$set": locked})
    assert job(mongo_config, sample_model_dir).counts["tagged"] == 9
    before = dump(store)
    result = cron(mongo_config, "run", "--model", str(sample_model_dir), "--all")
    assert result.exit_code == 0, result.output
    assert "tagged 9" in result.stdout and "skipped-manual 3" in result.stdout
    after = dump(store)
    for article_id in ("s001", "s002", "s003"):
        assert after[article_id] == before[article_id]
    assert after["s004"]["hybrid"]["tagged_at"] > before["s004"]["hybrid"]["tagged_at"]


def test_malformed_documents_are_recorded_and_the_batch_continues(store, mongo_config,
                                                                  sample_model_dir):
    good = records(4)
    store.import_records([
        *good,
        {"id": "no-content", "title": "Redis 缓存穿透与雪崩的应对"},
        {"id": "number", "title": "数字正文", "content": 42},
        {"id": "array", "title": "数组正文", "content": ["a", "b"]},
        {"id": "empty", "views": 1},
        {"id": "huge", "title": "很大的 HTML 页面",
         "content": "<div><p>Kubernetes 集群网络策略与 Pod 调度</p></div>\n" * 110_000},
        {"id": "broken", "title": "Broken HTML",
         "content": "<div><p>unclosed <b>Redis <table><tr><td>持久化 &#xZZ; <![CDATA[ x"},
        {"id": "bad-state", "title": "Go 并发", "content": "goroutine", "hybrid": "junk"},
    ])
    assert len(store.articles.find_one({"_id": "huge"})["content"].encode()) > 5_000_000
    result = cron(mongo_config, "run", "--model", str(sample_model_dir))
    assert result.exit_code == Exit.PARTIAL, result.output
    assert "failed 4" in result.stdout and "over the limit" in result.stderr
    docs = dump(store)
    for article_id in [r["id"] for r in good] + ["no-content", "huge", "broken"]:
        assert_tagged(docs[article_id], mongo_config)
    assert "missing:content" in docs["no-content"]["hybrid"]["flags"]
    assert "truncated:content" in docs["huge"]["hybrid"]["flags"]
    for article_id in ("number", "array", "empty"):
        error = docs[article_id]["hybrid"]["error"]
        assert article_id in error and "field 'content'" in error
        assert "categories" not in docs[article_id]
    assert docs["bad-state"]["hybrid"] == "junk"
    report = store.runs.find_one()
    assert {e["_id"] for e in report["errors"]} == {"number", "array", "empty", "bad-state"}
    assert report["failure_rate"] > mongo_config.max_failure_rate


def test_dry_run_writes_nothing_and_prints_what_would_change(store, mongo_config,
                                                             sample_model_dir):
    store.import_records(records(10, labels=True))
    before = dump(store)
    result = cron(mongo_config, "run", "--model", str(sample_model_dir), "--dry-run")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()[:-1]]
    assert lines and all(set(row) == {"_id", "categories", "tags", "was"} for row in lines)
    assert lines[0]["was"]["categories"] == before[lines[0]["_id"]]["categories"]
    assert "dry run completed" in result.stdout.splitlines()[-1]
    assert dump(store) == before
    assert store.runs.count_documents({}) == 0 and store.leases.count_documents({}) == 0


def test_results_collection_is_written_and_articles_are_only_read(mongo_config,
                                                                  sample_model_dir):
    config = replace(mongo_config, results_collection="labels")
    with Store(config) as store:
        store.import_records(records(10, labels=True))
        before = dump(store)
        assert job(config, sample_model_dir).counts["tagged"] == 10
        assert dump(store) == before
        for doc in store.labels.find():
            assert set(doc["hybrid"]) >= STATE_KEYS and doc["categories"]
        assert job(config, sample_model_dir).counts["unchanged"] == 10


def test_since_and_limit_select_as_documented(store, mongo_config, sample_model_dir):
    store.import_records(records(12))
    report = job(mongo_config, sample_model_dir, Selection(limit=5))
    assert report.counts["tagged"] == 5 and report.status == "completed"
    report = job(mongo_config, sample_model_dir)
    assert (report.counts["tagged"], report.counts["unchanged"]) == (7, 5)
    past = now() - timedelta(days=1)
    assert job(mongo_config, sample_model_dir, Selection("since", past)).counts["tagged"] == 0
    later = now() + timedelta(seconds=1)
    assert job(mongo_config, sample_model_dir, Selection("since", later)).counts["tagged"] == 12


def test_killed_run_resumes_exactly_once_and_a_concurrent_run_is_refused(
        store, mongo_config, sample_model_dir):
    store.import_records(records(40, salt=uuid.uuid4().hex[:8]))
    before = dump(store)
    proc = subprocess_run(mongo_config, sample_model_dir, "--batch-size", "2")
    try:
        killed = wait_for_checkpoint(store, proc)
        concurrent = cron(mongo_config, "run", "--model", str(sample_model_dir))
        assert concurrent.exit_code == Exit.BUSY, concurrent.output
        assert "another run is tagging" in concurrent.stderr
    finally:
        proc.kill()
        proc.communicate()
    tagged_before = {i: d["hybrid"] for i, d in dump(store).items() if "hybrid" in d}
    assert 0 < len(tagged_before) < 40, "the run was not killed midway"

    last_checkpoint = store.runs.find_one({"_id": killed["_id"]})
    report = job(mongo_config, sample_model_dir)
    assert report.resumed_from == killed["_id"]
    assert report.counts["tagged"] == 40 - len(tagged_before)
    # what the killed run wrote after its last checkpoint is "resumed", not "unchanged":
    # the reports add up to one tagging per article
    assert (last_checkpoint["counts"]["tagged"] + report.counts["tagged"]
            + report.counts["resumed"]) == 40
    assert report.counts["unchanged"] == 0
    after = dump(store)
    assert {i: {k: v for k, v in d.items() if k not in OWNED} for i, d in after.items()} == before
    for article_id, doc in after.items():
        assert_tagged(doc, mongo_config)
        if article_id in tagged_before:  # not written again
            assert doc["hybrid"] == tagged_before[article_id]
    statuses = Counter(r["status"] for r in store.runs.find())
    assert statuses == {"interrupted": 1, "completed": 1}


def test_losing_the_server_for_good_exits_6_within_the_budget_in_one_line(
        mongo_config, sample_model_dir, tmp_path):
    storage = tmp_path / "server"
    server, uri = start_server_process(storage)
    port = uri.rsplit(":", 1)[1].strip("/")
    budget = 8.0
    config = replace(mongo_config, mongo_uri=uri, mongo_timeout=30.0,
                     mongo_retry_seconds=budget)
    try:
        with Store(config) as store:
            store.import_records(records(30, salt=uuid.uuid4().hex[:8]))
            proc = subprocess_run(config, sample_model_dir, "--batch-size", "2")
            try:
                wait_for_checkpoint(store, proc)
            except BaseException:
                proc.kill()
                raise
        stop_server_process(server)
        lost = time.monotonic()
        _, stderr = proc.communicate(timeout=120)
        assert time.monotonic() - lost <= budget + 10, stderr
        assert proc.returncode == Exit.DB, stderr
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if not line[:4].isdigit()]
        assert len(errors) == 1 and errors[0].startswith(f"error: lost MongoDB at {uri}"), stderr
        assert "checkpoint is kept" in errors[0]

        server, _ = start_server_process(storage, port=int(port))
        with Store(config) as store:
            checkpoint = store.runs.find_one()["checkpoint"]
            tagged_before = {i: d["hybrid"] for i, d in dump(store).items() if "hybrid" in d}
            report = job(config, sample_model_dir)
            assert report.checkpoint and checkpoint and report.resumed_from
            after = dump(store)
            assert report.counts["tagged"] == 30 - len(tagged_before)
            for article_id, doc in after.items():
                assert_tagged(doc, config)
                if article_id in tagged_before:
                    assert doc["hybrid"] == tagged_before[article_id]
    finally:
        stop_server_process(server)


def test_a_20_second_server_restart_mid_run_is_ridden_out(mongo_config, sample_model_dir,
                                                          tmp_path):
    """The server is killed and comes back on the same port 20 s later: the run waits,
    reopens its scan past the last _id (the restarted server has lost the cursor) and
    completes, every article tagged once, no rerun needed."""
    storage = tmp_path / "server"
    server, uri = start_server_process(storage, extra_args=["--sync-on-commit"])
    port = int(uri.rsplit(":", 1)[1].strip("/"))
    config = replace(mongo_config, mongo_uri=uri, mongo_timeout=5.0, mongo_retry_seconds=120,
                     batch_size=4)
    try:
        with Store(config) as store:
            store.import_records(records(60, salt=uuid.uuid4().hex[:8]))
            proc = subprocess_run(config, sample_model_dir)
            wait_for_checkpoint(store, proc)
        kill_server_process(server)
        time.sleep(20)
        server, _ = start_server_process(storage, port=port, extra_args=["--sync-on-commit"])
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        with Store(config) as store:
            runs = list(store.runs.find())
            assert [r["status"] for r in runs] == ["completed"]
            assert runs[0]["counts"]["tagged"] == 60
            for doc in dump(store).values():
                assert_tagged(doc, config)
                assert doc["hybrid"]["run"] == runs[0]["_id"]
        assert "event=retry" in stderr
    finally:
        stop_server_process(server)


def test_a_killed_run_leaves_no_worker_alive(store, mongo_config, sample_model_dir):
    store.import_records(records(60, salt=uuid.uuid4().hex[:8]))
    proc = subprocess_run(mongo_config, sample_model_dir, "--workers", "2", "--batch-size", "2")
    workers: list[psutil.Process] = []
    try:
        wait_for_checkpoint(store, proc)
        assert len(pool_workers(proc.pid)) == 2
        workers = psutil.Process(proc.pid).children(recursive=True)  # the fork server too
        proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(workers, timeout=5)
        alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]  # dead, not reaped
        assert alive == [], [(p.pid, p.cmdline()[-3:]) for p in alive]
    finally:
        for worker in workers:  # never leave them behind, even when the test fails
            with contextlib.suppress(psutil.Error):
                worker.kill()
        proc.kill()
        proc.communicate()


def test_lock_variants_are_never_overwritten(store, mongo_config, sample_model_dir):
    """Truthy and case variants of `locked` and `source` count as manual; a value that says
    neither is one clear error for that article; none of them is written."""
    variants = {"lock-1": {"locked": 1}, "lock-str": {"locked": "true"},
                "lock-upper": {"locked": "TRUE"}, "lock-yes": {"locked": "yes"},
                "src-cap": {"source": "Manual"}, "src-upper": {"source": "MANUAL"}}
    unclear = {"lock-maybe": {"locked": "maybe"}, "src-human": {"source": "Human"},
               "lock-list": {"locked": [True]}}
    unlocked = {"lock-0": {"locked": 0}, "lock-false": {"locked": "false"}}
    docs = records(11, labels=True)
    for doc, (name, state) in zip(docs, [*variants.items(), *unclear.items(),
                                         *unlocked.items()], strict=True):
        doc.update(id=name, hybrid=state)
    store.import_records(docs)
    before = dump(store)
    result = cron(mongo_config, "run", "--model", str(sample_model_dir), "--all", "--json")
    report = json.loads(result.stdout)
    after = dump(store)
    for name in [*variants, *unclear]:
        assert after[name] == before[name], name
    assert report["counts"]["skipped_manual"] == len(variants)
    errors = {e["_id"]: e["error"] for e in report["errors"]}
    assert set(errors) == set(unclear)
    assert "hybrid.locked" in errors["lock-maybe"] and "hybrid.source" in errors["src-human"]
    for name in unlocked:
        assert after[name]["hybrid"]["source"] == "model"


def test_password_in_the_uri_never_appears_in_any_output(mongo_config, sample_model_dir):
    if "@" in mongo_config.mongo_uri:
        pytest.skip("test server URI already has credentials")
    secret = "Secr3t-pw"
    config = replace(mongo_config,
                     mongo_uri=mongo_config.mongo_uri.replace("://", f"://hybrid:{secret}@", 1))
    result = cron(config, "run", "--model", str(sample_model_dir))
    assert result.exit_code == Exit.DB
    assert "hybrid:***@" in result.stderr or "MongoDB" in result.stderr
    assert secret not in result.output and secret not in result.stderr


NIGHTLY_SH = Path(__file__).resolve().parents[1] / "scripts" / "nightly.sh"


def test_nightly_sh_logs_passes_the_exit_code_through_and_runs_once(tmp_path):
    fake = tmp_path / "hybrid"
    fake.write_text("#!/bin/sh\necho \"args: $*\"\necho oops >&2\nsleep \"${SLEEP:-0}\"\n"
                    "exit 3\n")
    fake.chmod(0o755)
    log, lock = tmp_path / "logs" / "nightly.log", tmp_path / "nightly.lock"
    settings = {**os.environ, "HYBRID_BIN": str(fake), "HYBRID_LOG": str(log),
                "HYBRID_LOCK": str(lock)}
    done = subprocess.run([str(NIGHTLY_SH), "models/prod", "--workers", "2"], env=settings)
    assert done.returncode == 3
    text = log.read_text()
    assert "args: --quiet run --model models/prod --workers 2" in text and "oops" in text
    assert "nightly: end exit=3" in text

    first = subprocess.Popen([str(NIGHTLY_SH), "m"], env={**settings, "SLEEP": "5"})
    try:
        deadline = time.monotonic() + 5
        while log.read_text().count("start") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([str(NIGHTLY_SH), "m"], env=settings)
        assert second.returncode == Exit.BUSY
        assert "another nightly.sh still holds" in log.read_text()
    finally:
        first.kill()
        first.wait()


def test_nightly_run_with_llm_fallback_reports_calls_and_blocks(tmp_path, stub, sample_model_dir,
                                                                 mongo_config):
    from pymongo import MongoClient

    model_dir = sample_model_dir
    s = stub(lambda body, n: answer({"categories": ["黑客攻击", "数据库"], "tags": ["a"]}))
    where = ["--mongo-uri", mongo_config.mongo_uri, "--db", mongo_config.mongo_db]
    runner = CliRunner()
    imported = runner.invoke(main, ["-q", "mongo", "import", str(data.path("sample_unseen.jsonl")),
                                    *where])
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(main, [
        "-q", "--cache-dir", str(tmp_path), "run", "--model", str(model_dir), *where, "--json",
        "--llm-mode", "fallback", "--llm-base-url", s.url, "--llm-model", "stub",
        "--llm-threshold", "1.01", "--llm-unchecked"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["llm"]["unchecked"]
    assert report["llm"]["calls"] == report["counts"]["tagged"] == 6
    assert report["llm"]["blocked"] == 6
    with MongoClient(mongo_config.mongo_uri) as client:
        docs = list(client[mongo_config.mongo_db][mongo_config.mongo_collection].find())
        runs = list(client[mongo_config.mongo_db]["hybrid_runs"].find())
    assert all(d["categories"] == ["数据库"] and d["hybrid"]["source"] == "llm" for d in docs)
    assert runs[-1]["llm"]["blocked"] == 6


@pytest.mark.parametrize("fault", ["not-a-folder", "corrupt", "full"])
def test_a_broken_cache_stops_the_run_marks_no_article_and_the_next_run_tags_them(
        store, mongo_config, sample_model_dir, tmp_path, fault):
    """An environment fault is no article's fault: exit 7, one line, nothing marked failed,
    the lease released; once the cache works again, the next run tags every article."""
    store.import_records(records(6, salt=uuid.uuid4().hex[:8]))
    before = dump(store)
    cache = tmp_path / "cache"
    if fault == "not-a-folder":
        cache.write_text("a file where the cache folder should be")
    elif fault == "corrupt":
        cache.mkdir()
        (cache / "embeddings.sqlite").write_bytes(b"not a database" * 1000)
    environ = {**env(mongo_config), "HYBRID_CACHE_DIR": str(cache)}
    if fault == "full":  # a file size limit of 1 KB: the disk refuses the cache's first page
        proc = subprocess.run(
            [sys.executable, "-c", "import resource, sys; resource.setrlimit("
             "resource.RLIMIT_FSIZE, (1024, 1024)); sys.argv[0] = 'hybrid'; "
             "from hybrid.cli import main; main()", "--quiet", "run", "--model",
             str(sample_model_dir)], env={**os.environ, **environ}, capture_output=True,
            text=True, timeout=300)
        code, stderr = proc.returncode, proc.stderr
    else:
        result = CliRunner().invoke(main, ["--quiet", "run", "--model", str(sample_model_dir)],
                                    env=environ)
        code, stderr = result.exit_code, result.stderr
    assert code == Exit.ENVIRONMENT, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1 and errors[0].startswith("error: the embedding cache "), errors
    assert "No article was marked failed" in errors[0]
    assert dump(store) == before
    assert store.runs.find_one()["status"] == "failed"
    assert store.leases.count_documents({}) == 0
    report = job(mongo_config, sample_model_dir)
    assert (report.counts["tagged"], report.counts["failed"]) == (6, 0)


def test_an_article_marked_failed_is_retried_by_the_next_run(store, mongo_config,
                                                              sample_model_dir):
    store.import_records(records(3))
    assert job(mongo_config, sample_model_dir).counts["tagged"] == 3
    store.articles.update_one({"_id": "s002"}, {
        "$set": {"hybrid.error": "article 's002': OperationalError: no such table: emb"},
        "$unset": {"categories": "", "tags": ""}})
    report = job(mongo_config, sample_model_dir)
    assert (report.counts["tagged"], report.counts["unchanged"]) == (1, 2)
    assert_tagged(store.articles.find_one({"_id": "s002"}), mongo_config)


def test_ids_of_every_bson_type_are_tagged(store, mongo_config, sample_model_dir):
    """A sub-document or a Decimal128 `_id` made `run` exit 1 ("unhashable type")."""
    store.articles.insert_many([{**{k: v for k, v in d.items() if k != "id"}, "_id": i}
                                for d, i in zip(records(len(BSON_IDS)), BSON_IDS, strict=True)])
    before = {id_key(d["_id"]): d for d in store.articles.find()}
    result = cron(mongo_config, "run", "--model", str(sample_model_dir), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"tagged {len(BSON_IDS)}," in result.stdout and "conflicts 0" in result.stdout
    after = {id_key(d["_id"]): d for d in store.articles.find()}
    assert set(after) == set(before) == set(map(id_key, BSON_IDS))
    for key, doc in after.items():
        assert_tagged(doc, mongo_config)
        assert {k: v for k, v in doc.items() if k not in OWNED} == before[key]
    assert job(mongo_config, sample_model_dir).counts["unchanged"] == len(BSON_IDS)


def test_a_dotted_content_field_reads_the_nested_text_and_bad_names_exit_2(
        store, mongo_config, sample_model_dir):
    store.articles.insert_many([
        {"_id": d["id"], "title": d["title"], "body": {"html": d["content"], "lang": "zh"}}
        for d in records(3)])
    flags = ["--content-field", "body.html"]
    result = cron(mongo_config, "run", "--model", str(sample_model_dir), *flags)
    assert result.exit_code == 0, result.output
    assert "tagged 3," in result.stdout and "conflicts 0" in result.stdout
    for doc in store.articles.find():
        assert doc["body"]["lang"] == "zh" and "missing:body.html" not in doc["hybrid"]["flags"]
    again = cron(mongo_config, "run", "--model", str(sample_model_dir), *flags)
    assert "tagged 0," in again.stdout and "unchanged 3" in again.stdout
    nested = cron(mongo_config, "run", "--model", str(sample_model_dir), "--all", *flags,
                  "--categories-field", "meta.categories", "--tags-field", "meta.tags")
    assert "tagged 3," in nested.stdout, nested.output
    assert all(d["meta"]["categories"] and d["meta"]["tags"] for d in store.articles.find())
    before = dump(store)
    for wrong, setting in ((["--content-field", "$where"], "content_field"),
                           (["--categories-field", "hybrid.x"], "categories_field"),
                           (["--tags-field", "body.html.tags", *flags], "tags_field")):
        result = cron(mongo_config, "run", "--model", str(sample_model_dir), *wrong)
        assert result.exit_code == Exit.USAGE, result.output
        assert re.match(rf"error: (--[a-z-]+: )?{setting} ", result.stderr), result.stderr
        assert result.stderr.count("\n") == 1
    assert dump(store) == before and store.runs.count_documents({}) == 3


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_cleanly_and_a_run_from_another_host_resumes_at_once(
        store, mongo_config, sample_model_dir, monkeypatch, workers):
    """As `docker stop` or a Kubernetes rollout would stop it: exit 143 with one line, the
    run marked interrupted, its checkpoint kept, its lease released. Then a new container
    (another host name) resumes at once, instead of waiting for the lease to expire."""
    store.import_records(records(24, salt=uuid.uuid4().hex[:8]))
    proc = subprocess_run(mongo_config, sample_model_dir, "--batch-size", "2",
                          "--workers", workers)
    checkpointed, stderr = terminate_midway(store, proc)
    assert proc.returncode == Exit.TERMINATED, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1 and errors[0].startswith("error: stopped by SIGTERM: run "), stderr
    stopped = store.runs.find_one({"_id": checkpointed["_id"]})
    assert stopped["status"] == "interrupted" and stopped["checkpoint"] is not None
    assert store.leases.count_documents({}) == 0
    tagged_before = {i: d["hybrid"] for i, d in dump(store).items() if "hybrid" in d}
    assert 0 < len(tagged_before) < 24, "the run was not stopped midway"

    monkeypatch.setattr(socket, "gethostname", lambda: "another-host")
    report = job(mongo_config, sample_model_dir)
    assert report.resumed_from == stopped["_id"] and report.status == "completed"
    assert store.runs.find_one({"_id": report.id})["host"] == "another-host"
    assert (stopped["counts"]["tagged"] + report.counts["tagged"]
            + report.counts["resumed"]) == 24
    for article_id, doc in dump(store).items():
        assert_tagged(doc, mongo_config)
        if article_id in tagged_before:  # not written again
            assert doc["hybrid"] == tagged_before[article_id]
