"""hybrid.mongo.lease: one run per collection at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from bson import ObjectId

from hybrid.errors import LeaseHeld
from hybrid.mongo.lease import Lease
from hybrid.mongo.store import Store, now


def test_lease_is_exclusive_expires_and_is_taken_over_from_a_dead_process(store: Store):
    first, second = ObjectId(), ObjectId()
    Lease(store, first).take()
    Lease(store, first).take()  # a retried take of our own lease is fine
    with pytest.raises(LeaseHeld, match="another run is tagging"):
        Lease(store, second).take()
    store.leases.update_one({}, {"$set": {"expires_at": now() - timedelta(seconds=1)}})
    Lease(store, second).take()  # expired
    with pytest.raises(LeaseHeld, match="lost the lease"):
        Lease(store, first).renew()
    Lease(store, second).renew()

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    store.leases.update_one({}, {"$set": {"pid": int(dead.stdout)}})
    third = ObjectId()
    Lease(store, third).take()  # same host, holder process gone: taken over at once
    assert store.leases.find_one()["run"] == third and store.leases.find_one()["pid"] == os.getpid()
    Lease(store, third).release()
    assert store.leases.count_documents({}) == 0
