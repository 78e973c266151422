"""The section of `hybrid report` that shows a proposal file (`hybrid taxonomy suggest`):
each proposed change with its evidence and examples, for the person who decides."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from hybrid.taxonomy.suggest.proposal import Marked, read_proposal


def _growth(evidence: dict) -> str:
    by_year = (evidence.get("growth") or {}).get("by_year") or {}
    return ", ".join(f"{year}: {n}" for year, n in by_year.items()) or "-"


def additions(marked: list[Marked]) -> pd.DataFrame:
    rows = []
    for m in marked:
        e = m.evidence
        nearest = (e.get("nearest_category") or {}).get("name")
        within = (e.get("within_category") or {}).get("name")
        where = (f"within {within}" if within else
                 f"parent of {', '.join(e['parent_of'])}" if e.get("parent_of") else
                 f"near {nearest}")
        rows.append({"proposed category": m.name, "articles": len(m.articles),
                     "within / nearest": where,
                     "keywords": ", ".join(m.entry.get("keywords", [])),
                     "frequent tags": ", ".join(t["tag"] for t in e.get("frequent_tags", [])),
                     "per year": _growth(e), "named by": e.get("named_by", "-"),
                     "description": m.entry.get("description", ""),
                     "example titles": " · ".join(e.get("examples", []))})
    return pd.DataFrame(rows)


def merges(marked: list[Marked]) -> pd.DataFrame:
    rows = []
    for m in marked:
        e = m.evidence
        gone = ", ".join(g["name"] for g in m.entry["proposal"].get("merges", []))
        rows.append({"merge": f"{gone} → {m.name}",
                     "confused out of fold": e.get("confused_out_of_fold"),
                     "share of the smaller": e.get("share_of_smaller"),
                     "examples (author label → model)": " · ".join(
                         f"{x['title']} ({x['label']} → {x['model']})"
                         for x in e.get("examples", []))})
    return pd.DataFrame(rows)


def removals(marked: list[Marked]) -> pd.DataFrame:
    return pd.DataFrame([{"category": m.name, "reason": m.evidence.get("reason"),
                          "articles": len(m.articles), "newest": m.evidence.get("newest")}
                         for m in marked])


def proposal_html(path: str | Path, table: Callable[[pd.DataFrame, bool], str]) -> str:
    """The section: a heading, what the file proposes, and a table per kind of change
    (`table` renders a frame as the rest of the page does)."""
    _, marked = read_proposal(path)
    kinds = {"add": additions, "merge": merges, "remove": removals}
    parts = ["<h2>Proposed changes to the category list</h2>",
             f"<p>From {html.escape(str(path))}. Nothing changes until a person accepts it: "
             "delete what you reject, then <code>hybrid taxonomy diff</code> and "
             "<code>hybrid retrain --taxonomy</code> with the file.</p>"]
    titles = {"add": "New categories", "merge": "Merges", "remove": "Removals"}
    for action, build in kinds.items():
        chosen = [m for m in marked if m.action == action]
        parts.append(f"<h3>{titles[action]} ({len(chosen)})</h3>")
        parts.append(table(build(chosen), False) if chosen else "<p>None proposed.</p>")
    return "\n".join(parts)
