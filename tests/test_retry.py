"""hybrid.mongo.retry: transient errors are retried within the budget, then fail clearly."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pymongo.errors import OperationFailure
from test_store import ARTICLES, read

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
        try:  # the driver retries once by itself: 3 failures reach our backoff
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
    retries = [r.message for r in caplog.records if "event=retry" in r.message]
    assert any("writing labels" in m for m in retries)
    assert any("reading articles" in m for m in retries)


def test_a_server_that_stays_down_gives_a_clear_error(mongo_config: Config):
    down = replace(mongo_config, mongo_uri="mongodb://u:pw-123@127.0.0.1:9/", mongo_timeout=0.3,
                   mongo_retry_seconds=1.0)
    with (Store(down) as store,
          pytest.raises(StoreError, match=r"lost MongoDB at mongodb://u:\*\*\*@127") as err):
        RunLog(store).last()
    assert "pw-123" not in str(err.value)
