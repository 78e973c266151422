"""What a nightly run selects, and its report in `hybrid_runs`, which holds the checkpoint
(and, for the Ray engine, the partitions past it)."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from hybrid.errors import UsageError
from hybrid.llm.stats import LLMStats
from hybrid.mongo.marks import is_manual
from hybrid.mongo.store import Store, now

COUNTS = ("seen", "tagged", "resumed", "unchanged", "skipped_manual", "failed",
          "low_confidence", "conflicts")
MAX_ERRORS = 1000  # kept in a run report; more are only counted
log = logging.getLogger("hybrid.mongo")


@dataclass(frozen=True)
class Selection:
    """Which articles a run tags. Never manual ones. Always new ones, those whose text
    changed since they were tagged, and those that failed (`hybrid.error`: the cause may
    have been fixed since). With `retag_before`, also those last tagged before it: `--since
    DATE`, and `--all`, which is "since this job began", so a resumed `--all` skips what it
    already did. Another mode is a new `mode` and a line in `wants`."""

    mode: str = "new"  # "new" | "since" | "all" | "affected"
    retag_before: datetime | None = None
    limit: int | None = None
    # "affected" (after a taxonomy change): also articles holding a name not in this list
    authorized: frozenset[str] = frozenset()

    def wants(self, state: dict[str, Any], text_hash: str,
              categories: Any = None) -> str:
        """"manual", "unchanged" or "tag"."""
        if is_manual(state):
            return "manual"
        if "error" in state or state.get("content_hash") != text_hash:
            return "tag"
        teacher = state.get("teacher")
        if (isinstance(teacher, dict) and teacher.get("content_hash") == text_hash
                and teacher.get("categories")
                and (teacher["categories"] != categories or state.get("source") != "llm")):
            return "tag"  # labelled by a teacher since it was tagged: show the teacher's
        if self.mode == "affected":
            stored = categories if isinstance(categories, list) else [categories]
            if not {c for c in stored if c} <= self.authorized:
                return "tag"
        tagged_at = state.get("tagged_at")
        if self.retag_before is not None and not (
                isinstance(tagged_at, datetime) and tagged_at >= self.retag_before):
            return "tag"
        return "unchanged"

    @classmethod
    def from_flags(cls, retag_all: bool = False, retag: str | None = None,
                   since: datetime | None = None, limit: int | None = None,
                   authorized: Iterable[str] = ()) -> Selection:
        """The selection `hybrid run`'s flags ask for; `authorized`: the model's categories."""
        if sum(map(bool, (retag_all, since, retag))) > 1:
            raise UsageError("--all, --retag and --since exclude each other")
        if retag == "affected":
            return cls("affected", limit=limit, authorized=frozenset(authorized))
        if retag_all or retag == "all":
            return cls("all", now(), limit)
        if since:
            return cls("since", since.astimezone(UTC), limit)
        return cls(limit=limit)

    def resumes(self, run: dict[str, Any]) -> bool:
        """An unfinished run of the same selection is continued, not started over."""
        before = run.get("selection", {})
        return (run.get("status") != "completed" and before.get("mode") == self.mode
                and (self.mode != "since" or before.get("retag_before") == self.retag_before))

    def document(self) -> dict[str, Any]:
        return {"mode": self.mode, "retag_before": self.retag_before, "limit": self.limit}


@dataclass
class RunReport:
    """One run, as stored in `hybrid_runs` (rewritten with the checkpoint after each batch,
    or each partition).

    `checkpoint` means the same for both engines: every article up to it is done, so either
    engine resumes the other's run. The Ray engine also keeps `partitions`: the `_id` ranges
    (after, until] past the checkpoint that it handed out, in order, each marked done or
    not. The checkpoint moves over the done ones at the front; a resumed run hands out again
    those not done, then continues after the last one.
    """

    collection: str
    target: str
    model: str
    taxonomy_fingerprint: str
    selection: Selection
    workers: int = 1
    dry_run: bool = False
    engine: str = "local"  # or "ray"
    zero_shot: bool = False  # the model had no labelled articles (day one)
    id: ObjectId = field(default_factory=ObjectId)
    status: str = "running"  # then "completed", "failed" or "interrupted"
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None
    resumed_from: ObjectId | None = None
    # the interrupted runs this one continues: what they wrote past their checkpoint counts
    # as "resumed" here, not as "unchanged"
    resumes: list[ObjectId] = field(default_factory=list)
    checkpoint: Any = None
    partitions: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    categories: Counter = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    llm: dict[str, Any] | None = None  # calls, tokens, cost, blocked: when an LLM is on
    relabelled_manual: int = 0  # `--retag affected`: manual labels moved to new names
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def processed(self) -> int:
        return self.counts["tagged"] + self.counts["failed"]

    @property
    def articles_per_second(self) -> float:
        return round(self.processed / max(self.seconds, 1e-9), 1)

    @property
    def failure_rate(self) -> float:
        return self.counts["failed"] / max(self.processed, 1)

    def fail(self, article_id: Any, message: str) -> None:
        self.counts["failed"] += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"_id": article_id, "error": message[:500]})
        log.warning("event=article_failed run=%s article=%s error=%r", self.id, article_id,
                    message[:200])

    def hand_out(self, after: Any, until: Any) -> dict[str, Any]:
        partition = {"after": after, "until": until, "done": False}
        self.partitions.append(partition)
        return partition

    def finish(self, partition: dict[str, Any], last: Any, complete: bool) -> None:
        """`partition` is done up to `last`, the last `_id` it scanned; all of it if
        `complete`. What a limit left of it becomes a partition of its own, not done."""
        if not complete or partition["until"] is None:
            end = partition["after"] if last is None else last
            if not complete:
                self.partitions.insert(self.partitions.index(partition) + 1,
                                       {"after": end, "until": partition["until"],
                                        "done": False})
            partition["until"] = end
        partition["done"] = True
        while self.partitions and self.partitions[0]["done"]:
            self.checkpoint = self.partitions.pop(0)["until"]

    def part(self) -> RunReport:
        """A report for one partition of this run, nothing counted yet. What this run wrote
        itself is "resumed" there: only a retried partition finds any."""
        return replace(self, counts=dict.fromkeys(COUNTS, 0), categories=Counter(), errors=[],
                       partitions=[], resumes=[*self.resumes, self.id], llm=None)

    def add(self, part: RunReport) -> None:
        """Count a partition's report into this one."""
        for name, n in part.counts.items():
            self.counts[name] += n
        self.categories.update(part.categories)
        self.errors.extend(part.errors[:MAX_ERRORS - len(self.errors)])

    def tick(self) -> None:
        self.seconds = round(time.perf_counter() - self._clock, 2)

    def summary(self) -> str:
        c = self.counts
        top = ", ".join(f"{name} {n}" for name, n in self.categories.most_common(5))
        return (f"run {self.id} {'dry run ' if self.dry_run else ''}{self.status}"
                f"{' (zero-shot model)' if self.zero_shot else ''}: "
                f"seen {c['seen']}, tagged {c['tagged']}, "
                + (f"resumed {c['resumed']}, " if c["resumed"] else "")
                + f"unchanged {c['unchanged']}, "
                f"skipped-manual {c['skipped_manual']}, failed {c['failed']}, "
                f"low-confidence {c['low_confidence']}, conflicts {c['conflicts']} in "
                f"{self.seconds:.1f}s ({self.articles_per_second}/s)"
                + (f"; categories: {top}" if top else "")
                + (f"; manual labels moved to new names: {self.relabelled_manual}"
                   if self.relabelled_manual else "")
                + (f"\n{LLMStats.from_dict(self.llm).summary()}" if self.llm else ""))

    def document(self) -> dict[str, Any]:
        return {
            "_id": self.id, "collection": self.collection, "target": self.target,
            "model": self.model, "taxonomy_fingerprint": self.taxonomy_fingerprint,
            "selection": self.selection.document(), "workers": self.workers,
            "engine": self.engine, "zero_shot": self.zero_shot,
            "host": socket.gethostname(), "pid": os.getpid(), "status": self.status,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "resumed_from": self.resumed_from, "resumes": self.resumes,
            "checkpoint": self.checkpoint, "partitions": self.partitions,
            "counts": dict(self.counts),
            "categories": [{"category": name, "count": n}  # a list: names may hold "." or "$"
                           for name, n in self.categories.most_common()],
            "errors": self.errors, "errors_omitted": self.counts["failed"] - len(self.errors),
            "seconds": self.seconds, "articles_per_second": self.articles_per_second,
            "failure_rate": round(self.failure_rate, 4), "llm": self.llm,
            "relabelled_manual": self.relabelled_manual,
        }



class RunLog:
    """The run reports of the store's collection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.collection = store.config.mongo_collection

    def last(self) -> dict[str, Any] | None:
        return self.store.call("reading the last run", lambda: self.store.runs.find_one(
            {"collection": self.collection}, sort=[("started_at", -1)]))

    def close_dead(self, run_id: Any) -> None:
        """Under our lease, any other run still marked running has died."""
        self.store.call("closing dead runs", lambda: self.store.runs.update_many(
            {"collection": self.collection, "status": "running", "_id": {"$ne": run_id}},
            {"$set": {"status": "interrupted"}}))

    def save(self, report: RunReport, best_effort: bool = False) -> None:
        document = report.document()
        self.store.call("saving the run report", lambda: self.store.runs.replace_one(
            {"_id": document["_id"]}, document, upsert=True), best_effort)
