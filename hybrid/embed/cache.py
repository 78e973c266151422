"""On-disk embedding cache keyed by (embedder id, text hash), with a small in-memory layer.

Retraining and re-tagging unchanged text never pays for the embedder twice, and words
that recur across articles (tag candidates) are embedded once per machine.

New vectors are written by a thread of their own: sqlite's writes and checkpoints wait
for the disk, 1-3 ms of a lone article's ~30 in `serve`. They are on disk once `flush`
returns, and when the process exits normally (a worker process too).

A cache that cannot be read or written (a read-only or full disk, a corrupt file) is an
`EnvironmentFault`: every article needs it, so the job stops rather than failing each one
(a failed write, at the next `embed` or `flush`).
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from multiprocessing.util import Finalize
from pathlib import Path

import numpy as np
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from hybrid.embed.base import Embedder
from hybrid.errors import EnvironmentFault

_OPEN_SECONDS = 10.0  # how long a new cache's set-up is retried while another process holds it


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class CachedEmbedder(Embedder):
    def __init__(self, inner: Embedder, cache_dir: str | Path | None,
                 memory_items: int = 20_000) -> None:
        self.inner = inner
        self.id = inner.id
        self._namespace = inner.cache_id
        self._dim: int | None = None
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_items = memory_items
        self._db: sqlite3.Connection | None = None
        self._writes: queue.Queue[list[tuple[str, str, bytes]]] | None = None
        self._write_fault: EnvironmentFault | None = None
        self._path = Path(cache_dir) / "embeddings.sqlite" if cache_dir else None
        self.hits = 0
        self.misses = 0

    @contextlib.contextmanager
    def _faults(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise EnvironmentFault(f"the embedding cache {self._path} (cache_dir) cannot be "
                                   f"used: {type(exc).__name__}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection | None:
        # Opened lazily so a CachedEmbedder can be pickled into worker processes.
        if self._db is None and self._path is not None:
            with self._faults():
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        assert self._path is not None
        db = sqlite3.connect(self._path, timeout=60)
        # Two processes opening a new cache at once (the workers of `serve`, of `tag-file`)
        # race to switch it to WAL; sqlite answers the loser "database is locked" at once,
        # without waiting out the timeout. Another try then finds it switched.
        for attempt in Retrying(retry=retry_if_exception(_locked), wait=wait_random(0.01, 0.1),
                                stop=stop_after_delay(_OPEN_SECONDS), reraise=True):
            with attempt:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, vec BLOB, "
                           "PRIMARY KEY (model, key)) WITHOUT ROWID")
        return db

    @property
    def dim(self) -> int:
        """From a cached vector when there is one: asking the embedder may load its model."""
        if self._dim is None:
            db = self._connect()
            with self._faults():
                row = None if db is None else db.execute(
                    "SELECT vec FROM emb WHERE model=? LIMIT 1", [self._namespace]).fetchone()
            self._dim = len(row[0]) // 4 if row else self.inner.dim
        return self._dim

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_db"] = None
        state["_writes"] = None
        state["_write_fault"] = None
        state["_memory"] = OrderedDict()
        return state

    def _remember(self, key: str, vec: np.ndarray) -> None:
        self._memory[key] = vec
        if len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        missing: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            vec = self._memory.get(key)
            if vec is None:
                missing.setdefault(key, []).append(i)
            else:
                self._memory.move_to_end(key)
                out[i] = vec
        db = self._connect()
        if missing and db is not None:
            wanted = list(missing)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                marks = ",".join("?" * len(chunk))
                with self._faults():
                    rows = db.execute(f"SELECT key, vec FROM emb WHERE model=? AND key IN "
                                      f"({marks})", [self._namespace, *chunk]).fetchall()
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    for i in missing.pop(key):
                        out[i] = vec
                    self._remember(key, vec)
        # a text the batch repeats is embedded once; its copies count as hits, so hits +
        # misses is always the number of texts, however the texts are split into batches
        self.hits += len(texts) - len(missing)
        if missing:
            todo = list(missing)
            vectors = self.inner.embed([texts[missing[k][0]] for k in todo])
            self.misses += len(todo)
            for key, vec in zip(todo, vectors, strict=True):
                for i in missing[key]:
                    out[i] = vec
                self._remember(key, vec.copy())
            if db is not None:
                self._write([(self._namespace, k, v.astype(np.float32).tobytes())
                             for k, v in zip(todo, vectors, strict=True)])
        return out

    def flush(self) -> None:
        """Wait until every vector embedded so far is on disk; `EnvironmentFault` if writing
        failed."""
        if self._writes is not None:
            self._writes.join()
        if self._write_fault is not None:
            raise self._write_fault

    def _write(self, rows: list[tuple[str, str, bytes]]) -> None:
        if self._write_fault is not None:
            raise self._write_fault
        if self._writes is None:
            self._writes = queue.Queue()
            threading.Thread(target=self._writer, args=(self._writes,), daemon=True,
                             name="embedding-cache-writer").start()
            # at a normal exit, of this process or of a multiprocessing worker
            Finalize(self, self._writes.join, exitpriority=10)
        self._writes.put(rows)

    def _writer(self, writes: queue.Queue[list[tuple[str, str, bytes]]]) -> None:
        """Writes what `embed` hands over, all that is waiting in one transaction."""
        db = None
        while True:
            batches = [writes.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batches.append(writes.get_nowait())
            try:
                with self._faults():
                    db = db or self._open()
                    db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                                   [row for batch in batches for row in batch])
                    db.commit()
            except EnvironmentFault as exc:
                self._write_fault = exc
            finally:
                for _ in batches:
                    writes.task_done()
