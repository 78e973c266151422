"""scripts/bench_suggest.py: the measure follows the issue's matching rule."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_suggest import match


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
