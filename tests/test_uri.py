"""hybrid.mongo.uri: passwords never show."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hybrid.cli import main
from hybrid.errors import Exit
from hybrid.mongo.uri import redact, scrub


def test_redact_and_scrub_hide_the_password():
    uri = "mongodb://app:p%40ss/word@db1:27017,db2/?authSource=admin&tlsCertificateKeyFilePassword=k"
    assert redact(uri) == "mongodb://app:***@db1:27017,db2/?authSource=admin&tlsCertificateKeyFilePassword=***"
    assert redact("mongodb+srv://u:x@h/") == "mongodb+srv://u:***@h/"
    assert redact("mongodb://h:27017/") == "mongodb://h:27017/"
    assert scrub("auth failed for p@ss/word and p%40ss/word", uri).count("***") == 2


@pytest.mark.parametrize("uri", ["mongodb://app:s3cret-pw@db:99999/",
                                 "mongodb://app:s3cret/pw@db:27017/",
                                 "app:s3cret-pw@db:27017",
                                 "mongodb://app:s3cret@pw@db/"])
def test_a_malformed_uri_is_a_usage_error_that_never_shows_the_password(uri, sample_model_dir):
    result = CliRunner().invoke(main, ["--quiet", "run", "--model", str(sample_model_dir),
                                       "--mongo-uri", uri], env={"MONGODB_URI": ""})
    assert result.exit_code == Exit.USAGE, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert "s3cret" not in result.output and "pw@" not in result.output
