"""hybrid.taxonomy.change: diff and label migration (no model needed)."""

from __future__ import annotations

import json

import pytest

from hybrid import data
from hybrid.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy
from hybrid.taxonomy.change import Migration, diff, impact

OLD = parse_taxonomy([{"name": "数据库", "aliases": ["DB"]}, "前端", "移动", "安全", "运维",
                      "语言"], source="old")


def test_changes_are_read_from_the_new_lists_aliases():
    new = parse_taxonomy([{"name": "数据存储", "aliases": ["数据库"]},
                          {"name": "客户端", "aliases": ["前端", "移动"]},
                          {"name": "运维", "aliases": ["语言"]}, {"name": "测试",
                                                              "description": "单元测试"}],
                         source="new")
    m = diff(OLD, new)
    assert m.renamed == {"数据库": "数据存储"}
    assert m.merged == {"前端": "客户端", "移动": "客户端", "语言": "运维"}
    assert m.removed == ["安全"] and m.added == ["测试"] and m.kept == ["运维"]
    assert m.apply(["DB", "安全", "前端", "移动"]) == ["数据存储", "客户端"]
    assert m.apply(["运维"]) == ["运维"]
    assert sorted(m.changed) == ["前端", "安全", "数据库", "移动", "语言"]
    assert "renamed  数据库 (2 articles) → 数据存储" in m.summary(
        impact(m, [["db"], ["数据库", "前端"], ["运维"]]))


def test_an_explicit_map_wins_and_split_labels_are_dropped():
    new = parse_taxonomy(["数据库", "Web", "App", "安全", "运维", "编程"], source="new")
    m = diff(OLD, new, {"split": {"前端": ["Web", "App"]}, "merge": {"移动": "App"},
                        "rename": {"语言": "编程"}})
    assert m.split == {"前端": ["Web", "App"]}
    assert m.merged == {"移动": "App"} and m.renamed == {"语言": "编程"}
    assert m.added == ["Web"]
    assert m.apply(["前端", "语言"]) == ["编程"]


def test_a_map_naming_unknown_categories_is_refused():
    new = parse_taxonomy(["数据库"], source="new")
    with pytest.raises(TaxonomyError, match="不存在"):
        diff(OLD, new, {"rename": {"不存在": "数据库"}})
    with pytest.raises(TaxonomyError, match="nowhere"):
        diff(OLD, new, {"rename": {"安全": "nowhere"}})


def test_a_migration_survives_the_manifest():
    m = diff(load_taxonomy(data.path("sample_taxonomy.json")),
             load_taxonomy(data.path("sample_taxonomy_v2.json")))
    again = Migration.from_manifest(json.loads(json.dumps({"migration": m.to_json()})))
    assert again == m
    assert Migration.from_manifest({}) is None
