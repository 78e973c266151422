"""hybrid.ingest.keys: one identity for labels."""

from __future__ import annotations

from hybrid.ingest.keys import label_key


def test_label_key_folds_case_and_width():
    assert label_key("Ｋ８ｓ") == label_key("k8s") == "k8s"
    assert label_key("  Spring   Boot ") == "spring boot"
