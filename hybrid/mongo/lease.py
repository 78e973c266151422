"""One run per collection at a time: a lease document that expires unless renewed."""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from hybrid.errors import LeaseHeld
from hybrid.mongo.store import Store, now

log = logging.getLogger("hybrid.mongo")


class Lease:
    """Held by `run_id` on the store's collection. It expires `lease_seconds` after its last
    renewal; one held by a process of this host that has died is taken over at once."""

    def __init__(self, store: Store, run_id: Any) -> None:
        self.store = store
        self.run_id = run_id
        self.key = store.config.mongo_collection

    def take(self) -> None:
        store = self.store
        start = now()
        holder = {"run": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
                  "taken_at": start,
                  "expires_at": start + timedelta(seconds=store.config.lease_seconds)}
        try:
            store.call("taking the lease", lambda: store.leases.find_one_and_update(
                {"_id": self.key, "expires_at": {"$lt": start}}, {"$set": holder},
                upsert=True))
            return
        except DuplicateKeyError:
            current = store.call("reading the lease",
                                 lambda: store.leases.find_one({"_id": self.key})) or {}
        if current.get("run") == self.run_id:  # our own take, retried after a lost reply
            return
        if current.get("host") == holder["host"] and not _alive(current.get("pid")):
            taken = store.call("taking over a dead run's lease", lambda: store.leases.update_one(
                {"_id": self.key, "run": current.get("run")}, {"$set": holder}))
            if taken.matched_count:
                log.warning("event=lease_taken_over collection=%s dead_run=%s dead_pid=%s",
                            self.key, current.get("run"), current.get("pid"))
                return
        raise LeaseHeld(
            f"another run is tagging {store.where}: run {current.get('run')} on "
            f"{current.get('host')} (pid {current.get('pid')}) holds the lease until "
            f"{current.get('expires_at')}; if that run died, its lease expires then")

    def renew(self) -> None:
        store = self.store
        expires = now() + timedelta(seconds=store.config.lease_seconds)
        renewed = store.call("renewing the lease", lambda: store.leases.update_one(
            {"_id": self.key, "run": self.run_id}, {"$set": {"expires_at": expires}}))
        if not renewed.matched_count:
            raise LeaseHeld(f"lost the lease on {store.where}: it expired and another run took "
                            "it over; stopping so two runs do not write at once")

    def release(self, best_effort: bool = False) -> None:
        self.store.call("releasing the lease", lambda: self.store.leases.delete_one(
            {"_id": self.key, "run": self.run_id}), best_effort)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: assume alive, wait for expiry
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
