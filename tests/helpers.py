"""Helpers shared by the tests: the dev-data location, sample documents, and ways to run the
commands as a user (or cron) would."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp
from click.testing import CliRunner

from hybrid import data
from hybrid.batch.nightly import run
from hybrid.cli import main
from hybrid.config import Config
from hybrid.evaluation.quality import Predictions
from hybrid.ingest.records import read_jsonl
from hybrid.learn.features import Features
from hybrid.mongo.runs import RunReport, Selection
from hybrid.mongo.store import Store, content_hash

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


OWNED = ("categories", "tags", "hybrid")
STATE_KEYS = {"model", "taxonomy_fingerprint", "confidence", "scores", "source", "content_hash",
              "tagged_at", "flags"}


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (dev datasets live in ../shared/data)")
    return path


def records(n: int | None = None, salt: str = "", labels: bool = False) -> list[dict[str, Any]]:
    """Bundled sample articles as documents; `salt` makes their text new to the embedding
    cache (a slower run), `labels` keeps the authors' categories and tags."""
    rows = [r for name in ("sample_articles.jsonl", "sample_unseen.jsonl")
            for r in read_jsonl(data.path(name))]
    out = []
    for row in rows[:n]:
        if not labels:
            row = {k: v for k, v in row.items() if k not in ("categories", "tags")}
        out.append({**row, "title": f"{row['title']} {salt}".strip(), "views": 7})
    return out


def dump(store: Store, owned: bool = True) -> dict[Any, dict[str, Any]]:
    return {d["_id"]: d if owned else {k: v for k, v in d.items() if k not in OWNED}
            for d in store.articles.find()}


def job(config: Config, model_dir: Path, selection: Selection | None = None,
        **kwargs: Any) -> RunReport:
    with Store(config) as store:
        return run(store, model_dir, selection or Selection(), **kwargs)


def env(config: Config) -> dict[str, str]:
    """The settings as a cron job would pass them."""
    return {"HYBRID_CONFIG": "/nonexistent/hybrid.toml", "HYBRID_CACHE_DIR": config.cache_dir,
            "HYBRID_MONGO_URI": config.mongo_uri, "HYBRID_MONGO_DB": config.mongo_db,
            "HYBRID_MONGO_COLLECTION": config.mongo_collection,
            "HYBRID_BATCH_SIZE": str(config.batch_size),
            "HYBRID_MONGO_TIMEOUT": str(config.mongo_timeout),
            "HYBRID_MONGO_RETRY_SECONDS": str(config.mongo_retry_seconds)}


def cron(config: Config, *args: str):
    return CliRunner().invoke(main, ["--quiet", *args], env=env(config))


def subprocess_run(config: Config, model_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hybrid.cli", "--quiet", "run", "--model", str(model_dir), *args],
        env={**os.environ, **env(config)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def pool_workers(pid: int) -> list:
    """The worker processes of `pid`'s pool: the children of its fork server."""
    import psutil

    return [worker for child in psutil.Process(pid).children()
            if "forkserver" in " ".join(child.cmdline()) for worker in child.children()]


def wait_for_checkpoint(store: Store, proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = store.runs.find_one({"checkpoint": {"$ne": None}})
        if report:
            return report
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def terminate_midway(store: Store, proc: subprocess.Popen[str]) -> tuple[dict, str]:
    """SIGTERM to a `hybrid run` subprocess once it saved a checkpoint, as `docker stop` or
    systemd would send it; (the run's report at that checkpoint, its stderr)."""
    try:
        report = wait_for_checkpoint(store, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return report, stderr


def error_lines(stderr: str) -> list[str]:
    """stderr without the structured log lines of --quiet (they start with the date)."""
    return [line for line in stderr.splitlines() if not line[:4].isdigit()]


def assert_tagged(doc: dict[str, Any], config: Config) -> None:
    state = doc.get("hybrid", {})
    assert 1 <= len(doc.get("categories", [])) <= 3 and doc["tags"], (doc["_id"], state)
    assert set(state) >= STATE_KEYS and "error" not in state
    assert state["source"] == "model" and state["content_hash"] == content_hash(doc, config)


def hybrid(*args: str, cache_dir: Path | str | None = None, input: str | None = None,
           environ: dict[str, str] | None = None):
    """`hybrid --quiet [--cache-dir DIR] ARGS` in this process, without a MongoDB URI unless
    `environ` gives one."""
    where = ["--cache-dir", str(cache_dir)] if cache_dir else []
    return CliRunner().invoke(main, ["--quiet", *where, *args], input=input,
                              env=environ or {"MONGODB_URI": ""})


ARTICLES = [
    {"id": "a1", "title": "Redis 持久化", "description": None, "content": "RDB 与 AOF"},
    {"id": "a2", "title": "Vue 组件", "content": "组合式 API", "categories": ["前端开发"],
     "tags": ["vue"], "author": "x"},
]


def read(store: Store, article_id: str) -> dict:
    """What the nightly job reads of an article: `_id` and the text fields."""
    return store.articles.find_one({"_id": article_id},
                                   {"title": 1, "description": 1, "content": 1})


# every type MongoDB takes as an `_id` (all but arrays, regular expressions and undefined)
BSON_IDS = [ObjectId("65a1b2c3d4e5f60718293a4b"), "s", "1", 1, Int64(2**40), 2.5,
            Decimal128("1.5"), {"n": 1}, {"n": {"deep": [1, 2]}, "m": "x"}, b"\x01\x02",
            Binary(uuid.UUID(int=7).bytes, 4), datetime(2024, 5, 1, tzinfo=UTC), True, None,
            MinKey(), MaxKey(), Timestamp(5, 1), Code("x"), "x" * 255]


NAMES = ["数据库", "前端开发", "人工智能"]


FLIPPED = (3, 40, 50, 77)


def label_predictions(n: int = 90, flipped: tuple[int, ...] = FLIPPED,
                      seed: int = 0) -> Predictions:
    """A confident model that is right about every article; the authors got `flipped` wrong."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 3
    proba = np.full((n, 3), 0.03) + rng.uniform(0, 0.05, (n, 3))
    proba[np.arange(n), truth] = rng.uniform(0.75, 0.99, n)
    labels = np.eye(3, dtype=int)[truth]
    for i in flipped:
        labels[i] = np.roll(labels[i], 1)
    sets = np.eye(3, dtype=int)[proba.argmax(axis=1)]
    ids = [f"a{i}" for i in range(n)]
    tags = [["mysql", "索引"] if t == 0 else ["vue"] for t in truth]
    author_tags = [["MySQL", f"rare{i}"] for i in range(n)]
    return Predictions("test", NAMES, ids, [f"title {i}" for i in range(n)], labels, proba,
                       sets, proba.max(axis=1), tags, author_tags,
                       [{"share": 0.1, "articles": 9, "accuracy": 86 / 90,
                         "lowest_confidence": 1.0, "random": 0.97}])


def synthetic_features(rng, n, dim=8):
    return [Features(embedding=rng.normal(size=dim).astype(np.float32),
                     words=[f"w{rng.integers(0, 30)}" for _ in range(8)], head_words=["t"],
                     candidates=[],
                     title="", lexical="x y z") for _ in range(n)]


def fill_in(review: Path, gold: dict[str, list[str]]) -> int:
    """What a person does with a review file: fills in its `categories` column; its rows.
    An article is its `id` cell, or in a file about MongoDB articles its `_id` cell (an
    `id_key`, as `gold` has it)."""
    with review.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["categories"] = "; ".join(gold[row["_id"] if "_id" in row else row["id"]])
    with review.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
