"""Where day one's labels are kept, with their provenance: a person's (`source: "manual"`) or
a teacher LLM's (`source: "llm"`, the model, the time, the tokens it took).

Manual labels always win over an LLM's for the same article, and a later human correction
replaces an LLM label; an LLM label never becomes a manual one. Every label is written as
soon as it exists (a JSONL line flushed to disk, or one guarded update in MongoDB), so a
bootstrap killed midway loses nothing, and what the ledger holds is what was spent. One
bootstrap at a time labels with a ledger (`lock`): two would choose the same articles and pay
for each twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hybrid.config import Config
from hybrid.errors import HybridError, LeaseHeld
from hybrid.ingest.article import Article, ArticleError, parse_article
from hybrid.ingest.ids import id_key
from hybrid.ingest.keys import plain_tags
from hybrid.ingest.records import parse_json, to_json
from hybrid.mongo.lease import Lease
from hybrid.mongo.marks import is_manual
from hybrid.mongo.store import STATE, Store, content_hash

log = logging.getLogger("hybrid.labels")


@dataclass
class Label:
    id: str
    categories: list[str]  # empty: the teacher found no authorized category
    tags: list[str] = field(default_factory=list)
    source: str = "llm"  # or "manual"
    model: str | None = None  # the teacher LLM
    labelled_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))
    prompt_tokens: int = 0  # what the answer took, whether paid now or cached before
    completion_tokens: int = 0
    calls: int = 0  # requests this label took (0 when it came from the cache)

    @classmethod
    def from_json(cls, data: Any) -> Label:
        """A label as a ledger holds it, its tags cleaned as on every path (`plain_tag`); a
        `ValueError` naming the field that holds something no label does."""
        if not isinstance(data, dict):
            raise ValueError(f"not a JSON object but a {type(data).__name__}")
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for name in ("id", "categories"):
            if name not in fields:
                raise ValueError(f"field {name!r} is missing")
        for name, value in fields.items():
            check, kind = _FIELDS[name]
            if not check(value):
                raise ValueError(f"field {name!r}: {value!r:.80} is not {kind}")
        fields["tags"] = plain_tags(fields.get("tags", []))[0]
        return cls(**fields)


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (lambda v: isinstance(v, str), "text"), "categories": (_texts, "a list of texts"),
    "tags": (_texts, "a list of texts"), "source": (lambda v: v in ("llm", "manual"),
                                                  '"llm" or "manual"'),
    "model": (lambda v: v is None or isinstance(v, str), "text or null"),
    "labelled_at": (lambda v: isinstance(v, str), "text"),
    "prompt_tokens": (_count, "a whole number"), "completion_tokens": (_count, "a whole number"),
    "calls": (_count, "a whole number")}


def winner(labels: Iterable[Label]) -> dict[str, Label]:
    """One label per article: the last manual one, else the last one."""
    out: dict[str, Label] = {}
    for label in labels:
        current = out.get(label.id)
        if current is None or label.source == "manual" or current.source != "manual":
            out[label.id] = label
    return out


class FileLedger:
    """Labels as lines of a JSONL file, beside a JSONL file of articles."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def labels(self) -> dict[str, Label]:
        """A line that holds no label (cut off by a kill, or edited) is reported and skipped:
        the answer it was is still in the LLM cache, so asking again costs nothing."""
        if not self.path.exists():
            return {}
        found = []
        with self.path.open(encoding="utf-8", errors="surrogateescape") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                record = parse_json(line.rstrip("\r\n"), f"line {number}")
                try:
                    if isinstance(record, ArticleError):
                        raise ValueError(f"not JSON ({record.detail})")
                    found.append(Label.from_json(record))
                except ValueError as exc:
                    log.warning("%s line %d: no label, skipped: %s", self.path, number, exc)
        return winner(found)

    def add(self, label: Label) -> None:
        """Append one line, synced to disk; after a line cut off by a kill, on a new line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            torn = size > 0 and os.pread(fh.fileno(), 1, size - 1) != b"\n"
            if torn:
                log.warning("%s: its last line was cut off (a write interrupted); it holds no "
                            "label, and the next one starts on a new line", self.path)
            fh.write((("\n" if torn else "") + to_json(asdict(label)) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    @contextlib.contextmanager
    def lock(self, wait: float = 0) -> Iterator[None]:
        """This process alone labels with the ledger: a lock file beside it (an OS lock, so
        a killed bootstrap leaves none behind). `wait`: seconds to wait for another holder,
        for a writer of a few lines (people's labels), which a bootstrap still shuts out."""
        path = self.path.with_name(self.path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path)
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise LeaseHeld(f"another bootstrap is labelling with {self.path} (it holds "
                            f"{path}): let it finish, or stop it, then run this again; two at "
                            "once would pay twice for the same labels") from None
        try:
            yield
        finally:
            lock.release()


class StoreLedger:
    """In MongoDB: a teacher's label is `hybrid.teacher` of its article (a run never
    touches it, and never writes it on a manual article); manual labels are the articles'
    own manual labels."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[str, tuple[Any, str]] = {}  # article id → (_id, content hash)
        self._lost: HybridError | None = None  # the lease, lost while labelling

    def articles(self) -> list[Article]:
        """Every article of the collection that parses (the others cannot be labelled)."""
        out = []
        for record, _ in self.store.scan():
            try:
                article = parse_article(record, self.store.config, with_labels=False)
            except ValueError:
                continue
            self._keys[article.id] = (record["_id"], content_hash(record, self.store.config))
            out.append(article)
        return out

    def labels(self) -> dict[str, Label]:
        return labels_of(self.store.label_records(), self.store.config)

    def add(self, label: Label) -> None:
        key, text_hash = self._keys[label.id]
        document = {k: v for k, v in asdict(label).items() if k != "id"}
        self.store.set_teacher(key, {**document, "content_hash": text_hash})
        if self._lost is not None:  # the label paid for is kept; nothing more is asked
            raise self._lost

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """This process alone labels the collection: it holds the collection's lease (the
        one `hybrid run` takes), renewed in the background, as training between rounds can
        outlast it."""
        lease = Lease(self.store, f"bootstrap-{uuid.uuid4().hex[:12]}")
        lease.take()
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.store.config.lease_seconds / 4):
                try:
                    lease.renew()
                except HybridError as exc:
                    self._lost = exc
                    return

        keeper = threading.Thread(target=renew, name="hybrid-bootstrap-lease", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()
            lease.release(best_effort=True)


def labels_of(records: Iterable[dict[str, Any]], config: Config) -> dict[str, Label]:
    """The labels `Store.label_records` holds, by article id (`id_key(_id)`, as
    `StoreLedger.articles` names them)."""
    found = []
    for record in records:
        state = record.get(STATE) if isinstance(record.get(STATE), dict) else {}
        key = id_key(record["_id"])
        if is_manual(state) and record.get(config.categories_field):
            found.append(Label(key, list(record[config.categories_field]),
                               list(record.get(config.tags_field) or []), "manual"))
        elif isinstance(state.get("teacher"), dict):
            try:
                found.append(Label.from_json({**state["teacher"], "id": key}))
            except ValueError as exc:
                log.warning("article %r: its %s.teacher holds no label, skipped: %s", key,
                            STATE, exc)
    return winner(found)
