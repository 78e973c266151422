"""LLM answers on disk, keyed by (content hash, taxonomy fingerprint, model).

A rerun over unchanged articles and the same category list never pays for the same answer
twice. Only the answer's categories and tags are stored (`prompt.answer_fields`), and they are
validated again on use, so a changed alias map applies.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


class LLMCache:
    def __init__(self, cache_dir: str | Path) -> None:
        path = Path(cache_dir) / "llm.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (content TEXT, taxonomy TEXT, "
                         "model TEXT, answer TEXT, PRIMARY KEY (content, taxonomy, model)) "
                         "WITHOUT ROWID")
        self._lock = threading.Lock()

    def get(self, content: str, taxonomy: str, model: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM answers WHERE content=? AND taxonomy=? AND model=?",
                (content, taxonomy, model)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, content: str, taxonomy: str, model: str, answer: dict[str, Any]) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                             (content, taxonomy, model, json.dumps(answer, ensure_ascii=False)))

    def close(self) -> None:
        with self._lock:
            self._db.close()
