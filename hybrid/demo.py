"""`hybrid demo`: train on the bundled sample, tag unseen articles, then run the nightly job
over them in MongoDB.

MongoDB is $MONGODB_URI (database `hybrid_demo`) when set, else an embedded MongoDB-compatible
server, SecantusDB, under a temporary directory. SecantusDB is GPL-2.0, so it is only in the
`mongo-server` extra (dev, tests, demo), never a dependency of the package itself.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from hybrid import data
from hybrid.batch.nightly import run
from hybrid.config import Config
from hybrid.ingest.article import parse_article
from hybrid.ingest.records import load_articles, read_jsonl, to_json
from hybrid.learn.model import HybridModel
from hybrid.mongo.runs import Selection
from hybrid.mongo.store import Store
from hybrid.taxonomy import load_taxonomy

Echo = Callable[[str], None]


def run_demo(out: str | Path, config: Config, echo: Echo, say: Echo) -> None:
    """`echo` gets the results, `say` the progress."""
    taxonomy = load_taxonomy(data.path("sample_taxonomy.json"))
    articles = load_articles(data.path("sample_articles.jsonl"), config)
    say(f"training on {len(articles)} bundled sample articles, {len(taxonomy)} categories")
    model = HybridModel.train(articles, taxonomy, config, progress=say)
    model.save(out, config.model_key)
    for raw in read_jsonl(data.path("sample_unseen.jsonl")):
        article = parse_article(raw, config)
        echo(f"\n{article.title}")
        echo(to_json(model.predict([article])[0].output()))
    mongo_demo(out, config, echo, say)


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """The URI of a SecantusDB server living in a temporary directory."""
    from secantus import SecantusDBServer

    with (tempfile.TemporaryDirectory(prefix="hybrid-demo-") as storage,
          SecantusDBServer(storage_path=storage) as server):
        yield server.uri


def mongo_demo(model_dir: str | Path, config: Config, echo: Echo, say: Echo) -> None:
    """Import the sample (its labelled articles as manual labels), run the job, show results."""
    if not config.mongo_uri and importlib.util.find_spec("secantus") is None:
        say("skipping the MongoDB demo: set MONGODB_URI, or install the embedded server "
            "with `pip install 'hybrid[mongo-server]'`")
        return
    server = contextlib.nullcontext(config.mongo_uri) if config.mongo_uri else embedded_server()
    with server as uri:
        config = replace(config, mongo_uri=uri, mongo_db="hybrid_demo",
                         mongo_collection="articles", results_collection=None)
        with Store(config) as store:
            say(f"\nMongoDB demo on {store.where}")
            for name, manual in (("sample_articles.jsonl", True), ("sample_unseen.jsonl", False)):
                store.import_records([r for r in read_jsonl(data.path(name))
                                      if isinstance(r, dict)], manual)
            report = run(store, model_dir, Selection(), show=echo)
            echo(report.summary())
            for doc in store.tagged(3):
                state = doc.get("hybrid", {})
                echo(f"\n{doc['_id']} {doc.get('title')}\n  categories {doc.get('categories')} "
                     f"(confidence {state.get('confidence', 0):.2f}), tags {doc.get('tags')}"
                     + (f"\n  error {state['error']}" if "error" in state else ""))
