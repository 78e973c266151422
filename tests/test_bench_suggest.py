"""scripts/bench_suggest.py: the measure follows the issue's matching rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import shared_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_suggest import match, names_sheet


def test_a_proposal_recovers_every_hidden_category_it_meets_the_rule_for():
    """A field (工学, 40 articles) and its discipline (土木工程, 10) both hidden: a group of
    the 10 civil-engineering articles and 2 others is 100% 工学 but covers a quarter of it,
    and 83% 土木工程 covering all of it: 土木工程 is recovered, though the group holds more
    工学 than 土木工程 articles."""
    gold = {f"c{i}": ["工学", "土木工程"] for i in range(10)}
    gold |= {f"e{i}": ["工学"] for i in range(30)}
    gold |= {f"m{i}": ["医学"] for i in range(20)}
    group = [*(f"c{i}" for i in range(10)), "e0", "e1"]
    rows, recovered = match([group], gold, ["工学", "土木工程"], ["医学"])
    assert recovered == {"土木工程"}
    assert rows[0]["status"] == "recovered" and rows[0]["best"] == "土木工程"
    rows, recovered = match([[f"m{i}" for i in range(12)], [f"e{i}" for i in range(10)]],
                            gold, ["工学", "土木工程"], ["医学"])
    assert recovered == set() and [r["status"] for r in rows] == ["known", "partial"]


def test_the_sheet_of_names_can_hold_only_the_recovered_proposals(tmp_path):
    shared_data("oec2003.jsonl")  # the sheet shows the set's list: skipped without it
    rows = [{"status": status, "best": "跑步", "name": name, "keywords": ["比赛"],
             "examples": ["半马复盘"], "size": 10, "purity": 1.0, "coverage": 0.8}
            for status, name in (("recovered", "马拉松"), ("junk", "北京"))]
    runs = [{"set": "oec2003", "seed": 0, "hidden": ["跑步"], "proposals": rows},
            {"set": "oec2003", "seed": 1, "hidden": ["读书"], "proposals": rows[1:]}]
    sheet, key = tmp_path / "sheet.md", tmp_path / "key.json"
    assert names_sheet(runs, sheet, key, statuses=("recovered",)) == 1
    text = sheet.read_text("utf-8")
    assert "Name: 马拉松" in text and "北京" not in text
    assert "L1: " in text and "L2: " not in text  # only the lists of the items shown
    assert [a["proposed_name"] for a in json.loads(key.read_text("utf-8")).values()] == \
        ["马拉松"]
