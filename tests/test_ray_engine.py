"""hybrid.batch.ray_engine (`hybrid run --engine ray`, `hybrid tag-file --engine ray`) on a real
Ray cluster of two nodes on this machine, against SecantusDB over TCP with real pymongo."""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

import bson
import psutil
import pytest
from helpers import (
    OWNED,
    assert_tagged,
    cron,
    dump,
    error_lines,
    job,
    records,
    subprocess_run,
    terminate_midway,
    wait_for_checkpoint,
)

from hybrid.errors import Exit, ModelError
from hybrid.ingest.records import to_json
from hybrid.learn.artifacts import read_manifest
from hybrid.mongo.runs import Selection
from hybrid.mongo.store import Store, content_hash, now

ray = pytest.importorskip("ray")
from hybrid.batch.ray_engine import Worker, _guided  # noqa: E402 (needs Ray)

# what differs between two runs by design: which run wrote the labels, and when
RUN_FIELDS = ("run", "tagged_at")


def ours(doc: dict) -> bytes:
    """Our fields of a document as BSON (so field order counts), but for `RUN_FIELDS`."""
    state = {k: v for k, v in doc.get("hybrid", {}).items() if k not in RUN_FIELDS}
    return bson.encode({"categories": doc.get("categories"), "tags": doc.get("tags"),
                        "hybrid": state})


def on_ray(config, model_dir, *args: str):
    return cron(config, "run", "--model", str(model_dir), "--engine", "ray", "--workers", "2",
                *args)


def workers() -> list[psutil.Process]:
    """This test's Ray worker processes (the cluster's nodes are our children)."""
    return [p for p in psutil.Process().children(recursive=True)
            if _title(p).startswith("ray::Worker")]


def _title(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return (process.cmdline() or [""])[0]
    return ""


def test_a_ray_run_gives_the_same_documents_as_a_local_run(ray_cluster, mongo_config,
                                                           sample_model_dir):
    """The same: our fields (categories, tags, hybrid.*) byte for byte as BSON, except
    `hybrid.run` and `hybrid.tagged_at`, which name the run that wrote them and its time.
    `hybrid.model` is the model directory's name, the same for both. Manual and locked
    articles are left as they were by both, and no other field is touched. An article a
    teacher labelled (`hybrid bootstrap`) gets the teacher's labels from both."""
    local = replace(mongo_config, mongo_collection="local")
    docs = records()
    docs[0]["hybrid"] = {"source": "manual"}
    docs[1]["hybrid"] = {"locked": True}
    taught = read_manifest(sample_model_dir)["categories"][-1:]
    docs[2]["hybrid"] = {"teacher": {"categories": taught, "tags": ["老师"], "source": "llm",
                                     "content_hash": content_hash(docs[2], mongo_config)}}
    with Store(mongo_config) as store, Store(local) as local_store:
        store.import_records(docs)
        local_store.import_records(docs)
        before = dump(store)

        dry = on_ray(mongo_config, sample_model_dir, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert len(dry.stdout.splitlines()) == len(docs) - 2 + 1  # one a change, and the summary
        assert dump(store) == before and store.runs.count_documents({}) == 0

        result = on_ray(mongo_config, sample_model_dir)
        assert result.exit_code == 0, result.output
        assert f"tagged {len(docs) - 2}," in result.stdout and "skipped-manual 2" in result.stdout
        assert cron(local, "run", "--model", str(sample_model_dir)).exit_code == 0

        after, local_after = dump(store), dump(local_store)
        assert {i: ours(d) for i, d in after.items()} == {i: ours(d)
                                                          for i, d in local_after.items()}
        assert {i: {k: v for k, v in d.items() if k not in OWNED} for i, d in after.items()} \
            == dump(local_store, owned=False) == {i: {k: v for k, v in d.items() if k not in OWNED}
                                                  for i, d in before.items()}
        report = store.runs.find_one()
        assert (report["engine"], report["workers"], report["status"]) == ("ray", 2, "completed")
        assert report["checkpoint"] == max(after) and report["partitions"] == []
        assert {d["hybrid"].get("run") for d in list(after.values())[2:]} == {report["_id"]}
        taught_doc = after[docs[2]["id"]]
        assert (taught_doc["categories"], taught_doc["tags"]) == (taught, ["老师"])
        assert store.leases.count_documents({}) == 0


def test_limit_all_and_since_select_as_on_one_machine(ray_cluster, store, mongo_config,
                                                      sample_model_dir):
    store.import_records(records(30))

    def tag(selection: Selection):
        return job(mongo_config, sample_model_dir, selection, engine="ray", workers=2)

    report = tag(Selection(limit=5))
    assert report.counts["tagged"] == 5 and report.status == "completed"
    report = tag(Selection())
    assert (report.counts["tagged"], report.counts["unchanged"]) == (25, 5)
    assert tag(Selection.from_flags(retag_all=True)).counts["tagged"] == 30
    assert tag(Selection("since", now() - timedelta(days=1))).counts["tagged"] == 0


def first_write(store: Store, running: Future) -> None:
    while not store.articles.find_one({"hybrid.run": {"$exists": True}}):
        assert not running.done(), running.result()
        time.sleep(0.005)


def busy_worker_on(node, running: Future) -> psutil.Process:
    """The worker of a Ray node (`ray._private.node.Node`) once it is tagging a partition."""
    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert not running.done(), running.result()
        with contextlib.suppress(psutil.Error):
            for process in raylet.children(recursive=True):
                if _title(process) == "ray::Worker.tag":
                    return process
        time.sleep(0.005)
    raise AssertionError("the second node's worker never started tagging")


def test_killed_workers_are_replaced_and_each_article_is_tagged_once(ray_cluster, store,
                                                                     mongo_config,
                                                                     sample_model_dir, caplog):
    """Both workers are SIGKILLed once the run has written its first articles, mid-partition.
    New workers retry their partitions; a retry skips what the dead worker wrote (counted
    "resumed"), so every article is written once for its text."""
    config = replace(mongo_config, batch_size=2)
    docs = records(salt=uuid.uuid4().hex[:8])  # new text: tagging is slow enough to interrupt
    store.import_records(docs)
    killed: list[psutil.Process] = []
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(job, config, sample_model_dir, engine="ray", workers=2)
        first_write(store, running)
        killed = [w for w in workers() if _title(w) == "ray::Worker.tag"]
        for worker in killed:
            worker.kill()
        report = running.result(timeout=300)
    assert killed and not any(w.is_running() for w in killed)
    assert caplog.text.count("event=worker_died") == len(killed)
    assert report.status == "completed"
    assert report.counts["tagged"] + report.counts["resumed"] == len(docs)
    assert report.counts["resumed"] > 0
    for doc in dump(store).values():
        assert_tagged(doc, config)
        assert doc["hybrid"]["run"] == report.id


def test_a_killed_driver_resumes_from_its_partitions_and_concurrent_runs_are_refused(
        ray_cluster, store, mongo_config, sample_model_dir):
    config = replace(mongo_config, batch_size=2)
    docs = records(salt=uuid.uuid4().hex[:8])
    store.import_records(docs)
    before = dump(store)
    proc = subprocess_run(config, sample_model_dir, "--engine", "ray", "--ray-address",
                          ray_cluster.address, "--workers", "2")
    try:
        killed = wait_for_checkpoint(store, proc)
        for engine in ("local", "ray"):  # a second run, Ray or not, is refused by the lease
            concurrent = cron(config, "run", "--model", str(sample_model_dir), "--engine",
                              engine)
            assert concurrent.exit_code == Exit.BUSY, concurrent.output
            assert "another run is tagging" in concurrent.stderr
    finally:
        proc.kill()
        proc.communicate()
    deadline = time.monotonic() + 60
    while workers():  # Ray ends the workers of a driver that died
        assert time.monotonic() < deadline, [_title(w) for w in workers()]
        time.sleep(0.1)
    tagged_before = {i: d["hybrid"] for i, d in dump(store).items() if "hybrid" in d}
    assert 0 < len(tagged_before) < len(docs), "the run was not killed midway"
    last_saved = store.runs.find_one({"_id": killed["_id"]})
    assert last_saved["partitions"], "the killed run left no partitions"

    report = job(config, sample_model_dir, engine="ray", workers=2)
    assert report.resumed_from == killed["_id"] and report.status == "completed"
    assert (last_saved["counts"]["tagged"] + report.counts["tagged"]
            + report.counts["resumed"]) == len(docs)
    assert report.counts["unchanged"] == 0
    after = dump(store)
    assert {i: {k: v for k, v in d.items() if k not in OWNED} for i, d in after.items()} == {
        i: {k: v for k, v in d.items() if k not in OWNED} for i, d in before.items()}
    for article_id, doc in after.items():
        assert_tagged(doc, config)
        if article_id in tagged_before:  # not written again
            assert doc["hybrid"] == tagged_before[article_id]
    assert Counter(r["status"] for r in store.runs.find()) == {"interrupted": 1, "completed": 1}
    assert job(config, sample_model_dir, engine="ray", workers=2).counts["tagged"] == 0
    assert dump(store) == after


def test_sigterm_stops_a_ray_run_cleanly_and_another_host_resumes_its_partitions(
        ray_cluster, store, mongo_config, sample_model_dir, monkeypatch):
    """`ray.init` installs a SIGTERM handler that exits at once: the run's own comes back."""
    config = replace(mongo_config, batch_size=2, partition_size=4)
    docs = records(24, salt=uuid.uuid4().hex[:8])
    store.import_records(docs)
    proc = subprocess_run(config, sample_model_dir, "--engine", "ray", "--ray-address",
                          ray_cluster.address, "--workers", "2")
    checkpointed, stderr = terminate_midway(store, proc)
    assert proc.returncode == Exit.TERMINATED, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1 and errors[0].startswith("error: stopped by SIGTERM: run "), stderr
    stopped = store.runs.find_one({"_id": checkpointed["_id"]})
    assert stopped["status"] == "interrupted" and store.leases.count_documents({}) == 0
    monkeypatch.setattr(socket, "gethostname", lambda: "another-host")
    report = job(config, sample_model_dir, engine="ray", workers=2)
    assert report.resumed_from == stopped["_id"] and report.status == "completed"
    assert (stopped["counts"]["tagged"] + report.counts["tagged"]
            + report.counts["resumed"]) == len(docs)
    for doc in dump(store).values():
        assert_tagged(doc, config)


def test_tag_file_on_ray_writes_the_same_lines_as_on_one_machine(ray_cluster, run, tmp_path,
                                                                 sample_model_dir):
    infile = tmp_path / "in.jsonl"
    infile.write_text("".join(to_json(r) + "\n" for r in records()) + "{broken\n",
                      encoding="utf-8")
    local = run("tag-file", str(infile), str(tmp_path / "local.jsonl"), "--model",
                str(sample_model_dir), "--batch-size", "8")
    spread = run("tag-file", str(infile), str(tmp_path / "ray.jsonl"), "--model",
                 str(sample_model_dir), "--batch-size", "8", "--engine", "ray", "--workers", "2")
    assert local.exit_code == spread.exit_code == Exit.PARTIAL, spread.output
    lines = (tmp_path / "ray.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(records()) + 1 and '"error"' in lines[-1]
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_a_corrupt_model_exits_4_and_the_llm_step_is_refused(store, mongo_config,
                                                             sample_model_dir, tmp_path):
    """Both before Ray starts."""
    store.import_records(records(4))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(sample_model_dir, corrupt)
    (corrupt / "training.json").write_text("{}", encoding="utf-8")
    result = cron(mongo_config, "run", "--model", str(corrupt), "--engine", "ray")
    assert result.exit_code == Exit.MODEL, result.output
    result = cron(mongo_config, "run", "--model", str(sample_model_dir), "--engine", "ray",
                  "--llm-mode", "fallback", "--llm-base-url", "http://127.0.0.1:9/v1",
                  "--llm-model", "m")
    assert result.exit_code == Exit.USAGE and "--engine local only" in result.stderr
    assert "categories" not in dump(store)[records(1)[0]["id"]]


def test_a_signed_model_needs_no_key_on_the_ray_hosts_but_another_model_is_refused(
        ray_cluster, store, mongo_config, sample_model, tmp_path, monkeypatch):
    """The driver checks the signature; each worker checks that its copy is the model the
    driver checked (the manifest's digest covers every file's checksum). This cluster's
    hosts started without the key."""
    store.import_records(records(4))
    signed = tmp_path / "signed"
    sample_model.save(signed, "k3y")
    monkeypatch.setenv("HYBRID_MODEL_KEY", "k3y")
    result = on_ray(mongo_config, signed)
    assert result.exit_code == 0, result.output
    assert all(d["hybrid"]["source"] == "model" for d in dump(store).values())

    another = Worker.remote(str(signed), mongo_config, "0" * 64)
    with pytest.raises(ModelError, match="not the model the run was started with"):
        ray.get(another.predict.remote(records(1)))
    ray.kill(another)


def test_a_dead_node_s_partition_is_retried_on_the_other_node(ray_cluster, store, mongo_config,
                                                              sample_model_dir, caplog):
    """The second node dies mid-run (its raylet and worker killed) while its worker is tagging a
    partition and the workers hold every CPU of the cluster: its partition goes to the worker
    on the head node, the replacement worker that Ray cannot place takes nothing, and the run
    completes."""
    config = replace(mongo_config, batch_size=2)
    docs = records(salt=uuid.uuid4().hex[:8])
    store.import_records(docs)
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(job, config, sample_model_dir, engine="ray", workers=2)
            node = ray_cluster.list_all_nodes()[1]
            tagging = busy_worker_on(node, running)
            tagging.suspend()  # held mid-partition, so the node dies with work in flight
            try:
                ray_cluster.remove_node(node, allow_graceful=False)
            finally:
                with contextlib.suppress(psutil.NoSuchProcess):
                    tagging.kill()
            report = running.result(timeout=300)
    finally:
        ray_cluster.add_node(num_cpus=1)  # for the tests after this one
    assert "event=worker_died" in caplog.text
    assert report.status == "completed"
    assert report.counts["tagged"] + report.counts["resumed"] == len(docs)
    for doc in dump(store).values():
        assert_tagged(doc, config)
        assert doc["hybrid"]["run"] == report.id


def test_partitions_shrink_to_one_batch_at_the_end_and_cover_the_collection_once():
    batches = [(i, i + 1) for i in range(48)] + [(48, None)]
    partitions = list(_guided(batches, workers=2, most=10))
    sizes = [(until if until is not None else 49) - after for after, until in partitions]
    assert sizes[0] == 10 and sizes == sorted(sizes, reverse=True) and sizes[-4:] == [1] * 4
    assert sum(sizes) == 49 and partitions[0][0] == 0 and partitions[-1] == (48, None)
    assert all(until == after for (_, until), (after, _) in pairwise(partitions))
