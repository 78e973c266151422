"""The MongoDB half of `hybrid demo`: the nightly job end to end on the bundled sample.

It uses $MONGODB_URI (database `hybrid_demo`) when set, else an embedded MongoDB-compatible
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

from hybrid.article import read_jsonl
from hybrid.cli import bundled
from hybrid.config import Config
from hybrid.nightly import Selection, run
from hybrid.store import Store


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """The URI of a SecantusDB server living in a temporary directory."""
    from secantus import SecantusDBServer

    with (tempfile.TemporaryDirectory(prefix="hybrid-demo-") as storage,
          SecantusDBServer(storage_path=storage) as server):
        yield server.uri


def mongo_demo(model_dir: str | Path, config: Config, echo: Callable[[str], None],
               say: Callable[[str], None]) -> None:
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
                store.import_records([r for r in read_jsonl(bundled(name))
                                      if isinstance(r, dict)], manual)
            report = run(store, model_dir, Selection(), show=echo)
            echo(report.summary())
            for doc in store.articles.find({"hybrid.source": {"$ne": "manual"}},
                                           sort=[("_id", 1)]).limit(3):
                state = doc.get("hybrid", {})
                echo(f"\n{doc['_id']} {doc.get('title')}\n  categories {doc.get('categories')} "
                     f"(confidence {state.get('confidence', 0):.2f}), tags {doc.get('tags')}"
                     + (f"\n  error {state['error']}" if "error" in state else ""))
