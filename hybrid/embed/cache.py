"""On-disk embedding cache keyed by (embedder id, text hash), with a small in-memory layer.

Retraining and re-tagging unchanged text never pays for the embedder twice, and words
that recur across articles (tag candidates) are embedded once per machine.

A cache that cannot be read or written (a read-only or full disk, a corrupt file) is an
`EnvironmentFault`: every article needs it, so the job stops rather than failing each one.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from hybrid.embed.base import Embedder
from hybrid.errors import EnvironmentFault


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class CachedEmbedder(Embedder):
    def __init__(self, inner: Embedder, cache_dir: str | Path | None,
                 memory_items: int = 20_000) -> None:
        self.inner = inner
        self.id = inner.id
        self._dim: int | None = None
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_items = memory_items
        self._db: sqlite3.Connection | None = None
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
                db = sqlite3.connect(self._path, timeout=60)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, vec BLOB, "
                           "PRIMARY KEY (model, key)) WITHOUT ROWID")
            self._db = db
        return self._db

    @property
    def dim(self) -> int:
        """From a cached vector when there is one: asking the embedder may load its model."""
        if self._dim is None:
            db = self._connect()
            with self._faults():
                row = None if db is None else db.execute(
                    "SELECT vec FROM emb WHERE model=? LIMIT 1", [self.id]).fetchone()
            self._dim = len(row[0]) // 4 if row else self.inner.dim
        return self._dim

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_db"] = None
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
                                      f"({marks})", [self.id, *chunk]).fetchall()
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
                with self._faults():
                    db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                                   [(self.id, k, v.astype(np.float32).tobytes())
                                    for k, v in zip(todo, vectors, strict=True)])
                    db.commit()
        return out
