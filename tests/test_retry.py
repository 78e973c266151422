"""hybrid.mongo.retry: transient errors are retried within the budget, then fail clearly."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import ARTICLES, read
from pymongo.errors import OperationFailure

from hybrid.config import Config
from hybrid.errors import StoreError
from hybrid.mongo.runs import RunLog
from hybrid.mongo.store import Store, Write


def test_transient_errors_are_retried_until_the_server_answers(mongo_config: Config, caplog):
    # poll the server often, so the driver sees the "stepped down" primary back quickly
    uri = mongo_config.mongo_uri
    uri += ("&" if "?" in uri else "?") + "serverMonitoringMode=poll&heartbeatFrequencyMS=500"
    with Store(replace(mongo_config, mongo_uri=uri, mongo_retry_seconds=20)) as store:
        store.import_records(ARTICLES)
        admin = store.client.admin
        try:  # within our deadline the driver retries a stepdown by itself
            admin.command("configureFailPoint", "failCommand", mode={"times": 3},
                          data={"failCommands": ["update"], "errorCode": 189,
                                "appName": "hybrid"})
        except OperationFailure:
            pytest.skip("server without test commands (configureFailPoint)")
        write = Write(read(store, "a1"), {"content_hash": "h"}, ["x"], [])
        assert store.write([write]).written == 1
        admin.command("configureFailPoint", "failCommand", mode={"times": 3},
                      data={"failCommands": ["find"], "closeConnection": True,
                            "appName": "hybrid"})
        assert [a["_id"] for a, _ in store.scan()] == ["a1", "a2"]


def test_a_cursor_lost_in_a_server_restart_is_reopened_past_the_last_id(mongo_config, caplog):
    """The driver never retries a getMore; a restarted server has forgotten the cursor
    (CursorNotFound, code 43): the scan reopens after the last _id it read."""
    config = replace(mongo_config, batch_size=4, mongo_retry_seconds=20)
    with Store(config) as store:
        store.import_records([{"id": f"a{i:02d}", "title": f"t{i}"} for i in range(20)])
        try:
            store.client.admin.command(
                "configureFailPoint", "failCommand", mode={"times": 2},
                data={"failCommands": ["getMore"], "errorCode": 43, "appName": "hybrid"})
        except OperationFailure:
            pytest.skip("server without test commands (configureFailPoint)")
        ids = [a["_id"] for a, _ in store.scan()]
    assert ids == [f"a{i:02d}" for i in range(20)]
    assert any("event=retry" in r.message and "reading articles" in r.message
               for r in caplog.records)


def test_a_server_that_stays_down_gives_a_clear_error(mongo_config: Config):
    down = replace(mongo_config, mongo_uri="mongodb://u:pw-123@127.0.0.1:9/", mongo_timeout=0.3,
                   mongo_retry_seconds=1.0)
    with (Store(down) as store,
          pytest.raises(StoreError, match=r"lost MongoDB at mongodb://u:\*\*\*@127") as err):
        RunLog(store).last()
    assert "pw-123" not in str(err.value)
