"""Shared fixtures: one trained sample model per test session, and a fresh MongoDB database
per test. Helpers that are not fixtures live in helpers.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import hybrid
from llm_stub import Respond, Stub, good

from hybrid import data
from hybrid.config import Config
from hybrid.evaluation.oracle import Oracle, serve
from hybrid.ingest.records import load_articles
from hybrid.learn.model import HybridModel
from hybrid.mongo.store import Store
from hybrid.taxonomy import load_taxonomy


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Embedding cache shared by the session (HYBRID_TEST_CACHE reuses one across runs)."""
    return Path(os.environ.get("HYBRID_TEST_CACHE") or tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def config(cache_dir: Path) -> Config:
    return Config(cache_dir=str(cache_dir))


@pytest.fixture(scope="session")
def sample_taxonomy():
    return load_taxonomy(data.path("sample_taxonomy.json"))


@pytest.fixture(scope="session")
def sample_articles(config: Config):
    return load_articles(data.path("sample_articles.jsonl"), config)


@pytest.fixture(scope="session")
def sample_model_dir(tmp_path_factory: pytest.TempPathFactory, config: Config,
                     sample_taxonomy, sample_articles) -> Path:
    """Trained once per session on the bundled sample; tests must not modify it."""
    out = tmp_path_factory.mktemp("models") / "sample"
    HybridModel.train(sample_articles, sample_taxonomy, config).save(out)
    return out


@pytest.fixture(scope="session")
def sample_model(sample_model_dir: Path, config: Config) -> HybridModel:
    return HybridModel.load(sample_model_dir, config=config)


@pytest.fixture
def mongo_config(config: Config, tmp_path: Path) -> Iterator[Config]:
    """Settings for a new database on $MONGODB_TEST_URI, else on an in-process SecantusDB;
    small batches and short timeouts so that failure tests are quick."""
    from mongo_server import mongo_uri
    from pymongo import MongoClient

    with mongo_uri(tmp_path) as uri:
        settings = replace(config, mongo_uri=uri, mongo_db=f"hybrid_test_{uuid.uuid4().hex[:12]}",
                           batch_size=8, mongo_timeout=3.0, mongo_retry_seconds=4.0)
        yield settings
        with MongoClient(uri) as client:
            client.drop_database(settings.mongo_db)


@pytest.fixture
def store(mongo_config: Config) -> Iterator[Store]:
    with Store(mongo_config) as store:
        yield store


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A Ray cluster (`ray.cluster_utils.Cluster`) of two nodes of one CPU each on this
    machine, with this process as its driver; other drivers join it at its `address`."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, logging_level="warning")
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def run(cache_dir: Path) -> Callable[..., Any]:
    """`hybrid --quiet --cache-dir <the session's cache> ARGS`, in this process."""
    def invoke(*args: str, input: str | None = None) -> Any:
        return hybrid(*args, cache_dir=cache_dir, input=input)
    return invoke


@pytest.fixture
def oracle(config: Config, sample_taxonomy) -> Iterator[Oracle]:
    """A perfect teacher for the bundled sample (the authors' labels), over HTTP: `.url`."""
    gold = load_articles(data.path("sample_articles.jsonl"), config)
    teacher = Oracle(gold, sample_taxonomy, config.llm_article_tokens)
    with serve(teacher) as url:
        teacher.url = url
        yield teacher


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    """`stub(respond)` starts a scripted OpenAI-compatible server; all stop after the test."""
    stubs: list[Stub] = []

    def make(respond: Respond = good) -> Stub:
        stubs.append(Stub(respond))
        return stubs[-1]

    yield make
    for s in stubs:
        s.close()
