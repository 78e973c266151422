"""hybrid.mongo.uri: passwords never show."""

from __future__ import annotations

from hybrid.mongo.uri import redact, scrub


def test_redact_and_scrub_hide_the_password():
    uri = "mongodb://app:p%40ss/word@db1:27017,db2/?authSource=admin&tlsCertificateKeyFilePassword=k"
    assert redact(uri) == "mongodb://app:***@db1:27017,db2/?authSource=admin&tlsCertificateKeyFilePassword=***"
    assert redact("mongodb+srv://u:x@h/") == "mongodb+srv://u:***@h/"
    assert redact("mongodb://h:27017/") == "mongodb://h:27017/"
    assert scrub("auth failed for p@ss/word and p%40ss/word", uri).count("***") == 2
