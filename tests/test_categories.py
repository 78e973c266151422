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


@pytest.mark.parametrize("data, message", [
    (["数据\x00库", "x"], r"#1: the name '数据\\x00库' holds .* U\+0000"),
    (["x", "\x1b[31m红色"], r"#2: the name '\\x1b\[31m红色' holds .* U\+001B"),
    (["abc\u202edef"], r"U\+202E"),
    (["数据库", "数据\u200b库"], r"#2: the name '数据\\u200b库' holds .* U\+200B"),
    (["\u3164", "x"], r"#1: the name '\u3164' shows nothing"),
    (["\u2800\u3000\u115f"], "shows nothing"),
    (["\ud800"], r"U\+D800"),
    (["长" * 10240], "longer than 100 characters"),
    ([{"name": "数据库", "aliases": ["D\x1bB"]}], r"#1 '数据库': alias 'D\\x1bB' holds"),
    ([{"name": "数据库", "keywords": ["\u200b"]}], r"#1 '数据库': keyword"),
    ([{"name": "数据库", "description": "a\u202eb"}], r"#1 '数据库': the description holds"),
    ([{"name": "数据库", "description": "d" * 5001}], "description is longer"),
    ([{"name": "x"}, {"name": "a", "parent": ["x"]}], r"#2 'a': 'parent' must be the name"),
])
def test_names_that_hide_garble_or_flood_what_is_shown_are_rejected(data, message):
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(data)


def test_ordinary_names_spaces_and_multiline_descriptions_pass():
    tax = parse_taxonomy([{"name": "Web 开发", "description": "前端\n后端\t全栈",
                           "aliases": ["C++", "Node.js"], "parent": None}, "云计算与DevOps"])
    assert tax.names == ["Web 开发", "云计算与DevOps"]


@pytest.mark.parametrize("text, message", [
    ('["前端开发", "\\ud800"]', r"#2: the name '\\ud800'"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_a_hostile_file_is_an_error_naming_it(tmp_path, text, message):
    path = tmp_path / "cats.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaxonomyError, match=rf"cats\.json.*{message}"):
        load_taxonomy(path)
    path.write_bytes('["数据库"]'.encode("gbk"))
    with pytest.raises(TaxonomyError, match=r"cats\.json: not UTF-8"):
        load_taxonomy(path)


def test_the_command_line_exits_2_and_prints_no_escape(tmp_path):
    from helpers import hybrid

    from hybrid.errors import Exit

    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(NAMES, ensure_ascii=False), encoding="utf-8")
    for name in ("\x1b]0;pwned\x07数据", "\ud800", "数据\u200b库"):
        new.write_text(json.dumps([*NAMES, name]), encoding="utf-8")
        result = hybrid("taxonomy", "diff", str(old), str(new))
        assert result.exit_code == Exit.USAGE, result.output
        assert "category #4" in result.output and "\x1b" not in result.output
