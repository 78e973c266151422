"""hybrid.taxonomy.categories: the authorized list."""

from __future__ import annotations

import json

import pytest

from hybrid.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy

NAMES = ["前端开发", "数据库", "安全最佳实践"]


@pytest.mark.parametrize("data", [
    NAMES,
    [{"name": n} for n in NAMES],
    {n: f"{n}的说明" for n in NAMES},
    {"categories": NAMES},
    {"categories": [{"name": n, "description": "d", "aliases": [], "keywords": ["k"]}
                    for n in NAMES]},
])
def test_every_accepted_shape_loads(data, tmp_path):
    path = tmp_path / "authorized_categories_infos.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tax = load_taxonomy(path)
    assert tax.names == NAMES
    assert tax.fingerprint == parse_taxonomy(NAMES).fingerprint


def test_fingerprint_ignores_order_and_descriptions_but_not_names():
    a = parse_taxonomy(NAMES)
    assert a.fingerprint == parse_taxonomy(list(reversed(NAMES))).fingerprint
    assert a.fingerprint == parse_taxonomy({n: "变了" for n in NAMES}).fingerprint
    assert a.fingerprint != parse_taxonomy([*NAMES, "移动开发"]).fingerprint


@pytest.mark.parametrize("data, message", [
    (["数据库", "数据库"], "duplicate"),
    (["数据库", "ＤＢ", "db"], "duplicate"),
    (["数据库", "  "], "empty name"),
    ([], "no categories"),
    ([{"description": "x"}], "name"),
    ([{"name": "a", "colour": "red"}], "unknown key"),
    ([{"name": "a", "aliases": "b"}], "list of strings"),
    ([{"name": "a", "parent": "nope"}], "parent"),
    ([{"name": "a", "aliases": ["x"]}, {"name": "b", "aliases": ["x"]}], "alias"),
    (42, "expected a list"),
])
def test_invalid_taxonomies_are_rejected_clearly(data, message):
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(data)


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "cats.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"cats\.json"):
        load_taxonomy(path)


def test_labels_map_through_aliases_and_unknown_ones_are_dropped():
    tax = parse_taxonomy([{"name": "人工智能", "aliases": ["AI", "机器学习"]}, {"name": "数据库"}])
    kept, dropped = tax.map_labels(["ai", "机器学习", "数据库", "区块链", "ＡＩ"])
    assert kept == ["人工智能", "数据库"]
    assert dropped == ["区块链"]
