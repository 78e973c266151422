"""hybrid.embed.cache: embeddings on disk, never computed twice."""

from __future__ import annotations

import numpy as np

from hybrid.embed import CachedEmbedder, Embedder


class CountingEmbedder(Embedder):
    id = "counting"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed(self, texts):
        self.calls.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_cache_never_embeds_the_same_text_twice_and_persists(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    first = cached.embed(["a", "bb", "a", "ccc"])
    assert inner.calls == ["a", "bb", "ccc"]
    cached.flush()
    again = CachedEmbedder(inner, tmp_path).embed(["ccc", "bb", "a"])
    assert inner.calls == ["a", "bb", "ccc"]
    np.testing.assert_allclose(again, first[[3, 1, 0]])


def test_cache_is_keyed_by_embedder_id(tmp_path):
    a = CountingEmbedder()
    CachedEmbedder(a, tmp_path).embed(["same text"])
    b = CountingEmbedder()
    b.id = "other-model"
    CachedEmbedder(b, tmp_path).embed(["same text"])
    assert b.calls == ["same text"]


def test_cached_embedder_pickles_for_worker_processes(tmp_path):
    import pickle

    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    cached.embed(["x"])
    clone = pickle.loads(pickle.dumps(cached))
    assert clone.embed(["x"]).shape == (1, 4)


def test_vectors_are_written_behind_and_on_disk_after_flush(tmp_path):
    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    cached.embed([f"text {i}" for i in range(50)])
    cached.flush()
    inner = CountingEmbedder()
    CachedEmbedder(inner, tmp_path).embed([f"text {i}" for i in range(50)])
    assert inner.calls == []


def _embed_and_exit(cache_dir: str) -> None:
    CachedEmbedder(CountingEmbedder(), cache_dir).embed(["said in a worker"])


def test_a_worker_process_that_exits_normally_leaves_its_vectors_on_disk(tmp_path):
    import multiprocessing

    worker = multiprocessing.get_context("spawn").Process(target=_embed_and_exit,
                                                          args=(str(tmp_path),))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    inner = CountingEmbedder()
    CachedEmbedder(inner, tmp_path).embed(["said in a worker"])
    assert inner.calls == []


def test_a_cache_that_cannot_be_written_stops_the_next_call(tmp_path):
    import sqlite3

    import pytest

    from hybrid.errors import EnvironmentFault

    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    cached.embed(["first"])
    cached.flush()
    db = sqlite3.connect(tmp_path / "embeddings.sqlite")
    db.execute("CREATE TRIGGER full BEFORE INSERT ON emb BEGIN "
               "SELECT RAISE(ABORT, 'database or disk is full'); END")  # reads still work
    db.commit()
    cached.embed(["second"])
    with pytest.raises(EnvironmentFault, match="cache_dir"):
        cached.flush()
    with pytest.raises(EnvironmentFault, match="cache_dir"):
        cached.embed(["third"])


def _open_at_once(path: str, start, errors) -> None:
    start.wait(30)
    try:
        CachedEmbedder(CountingEmbedder(), path).embed(["opened at once"])
    except Exception as exc:  # reported to the test, which names it
        errors.put(repr(exc))


def test_workers_opening_a_new_cache_at_once_all_get_it(tmp_path):
    """`serve`'s and `tag-file`'s workers start together on a fresh cache_dir: the ones that
    lose the race to switch the new file to WAL wait for it, instead of failing with
    "database is locked" (a server once failed to start so)."""
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    errors = fork.Queue()
    for round_ in range(10):  # the race is lost only some of the time
        start = fork.Barrier(6)
        path = str(tmp_path / f"new{round_}")
        workers = [fork.Process(target=_open_at_once, args=(path, start, errors))
                   for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0] * 6
    assert errors.empty(), errors.get()
