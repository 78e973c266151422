"""A suggested change to the category list, and the one file that holds it.

The file is a taxonomy file (`hybrid.taxonomy.categories` reads it): the current list with
the proposed changes applied, each marked with its evidence and the ids of its articles.

    {"proposal": {what was read, when, how},
     "categories": [
       {"name": "hardware", ...},                                   unchanged
       {"name": "大模型 / Agent", "description": ..., "keywords": [...],
        "proposal": {"action": "add", "evidence": {...}}, "articles": [ids]},
       {"name": "misc", "aliases": ["others"],
        "proposal": {"action": "merge", "merges": [the entry of "others"],
                     "evidence": {...}}, "articles": [ids]},
       {"name": "ctf", "proposal": {"action": "remove", "evidence": {...}},
        "articles": [ids]}]}

So `hybrid taxonomy diff current.json proposal.json` shows the change and `hybrid retrain
--taxonomy proposal.json` makes it, as the file stands. Nothing changes until a person
does: they delete the entries (or marks) they reject first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hybrid.output import write_text
from hybrid.taxonomy.categories import (
    Category,
    Taxonomy,
    load_taxonomy,
    parse_taxonomy,
    proposal_action,
)


@dataclass
class NewCategory:
    """A group of articles no category fits, described for a person to judge."""

    name: str
    description: str
    keywords: list[str]
    terms: list[str]  # the most distinctive terms (class-based TF-IDF), best first
    tags: list[dict[str, Any]]  # the group's most frequent tags: {"tag", "articles"}
    examples: list[str]  # five titles, the most typical first
    articles: list[str]
    growth: dict[str, Any]  # {"by_year": {year: articles}, "first", "last"}; {} undated
    nearest: str | None  # the category whose prototype is closest
    nearest_similarity: float
    within: str | None = None  # the category most of its articles already carry, if any
    within_share: float = 0.0
    parent_of: list[str] = field(default_factory=list)  # the existing categories it would hold
    named_by: str = "terms"  # or "llm"
    llm: dict[str, Any] | None = None  # the LLM's answer and what became of it

    @property
    def size(self) -> int:
        return len(self.articles)

    def evidence(self) -> dict[str, Any]:
        return {"size": self.size, "distinctive_terms": self.terms, "frequent_tags": self.tags,
                "examples": self.examples, "growth": self.growth,
                "nearest_category": {"name": self.nearest,
                                     "similarity": round(self.nearest_similarity, 3)},
                "within_category": ({"name": self.within, "share": round(self.within_share, 3)}
                                    if self.within else None),
                **({"parent_of": self.parent_of} if self.parent_of else {}),
                "named_by": self.named_by, **({"llm": self.llm} if self.llm else {})}


@dataclass
class Merge:
    """Two categories the model tells apart badly out of fold: `merged` into `into`."""

    into: str
    merged: str
    confused: int  # out-of-fold articles of one given the other as their top category
    share: float  # of the smaller category's out-of-fold articles
    joint: float  # cleanlab's estimate of the share of all articles in the overlap
    examples: list[dict[str, str]]  # {"id", "title", "label", "model"}
    articles: list[str]

    def evidence(self) -> dict[str, Any]:
        return {"confused_out_of_fold": self.confused, "share_of_smaller": round(self.share, 3),
                "joint_probability": round(self.joint, 4), "examples": self.examples}


@dataclass
class Removal:
    """A category with too few articles, or none lately."""

    name: str
    reason: str
    last: str | None  # the date of its newest article, if dated
    articles: list[str]

    def evidence(self) -> dict[str, Any]:
        return {"reason": self.reason, "articles": len(self.articles), "newest": self.last}


@dataclass
class Proposal:
    taxonomy: Taxonomy  # the current list
    additions: list[NewCategory] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    about: dict[str, Any] = field(default_factory=dict)  # what was read, when and how

    def entries(self) -> list[dict[str, Any]]:
        """The proposed list, each change marked."""
        merged = {m.merged: m for m in self.merges}
        into = {m.into: m for m in self.merges}
        removed = {r.name: r for r in self.removals}
        out = []
        for cat in self.taxonomy.categories:
            if cat.name in merged:
                continue
            entry = _entry(cat)
            if cat.name in into:
                m = into[cat.name]
                gone = self.taxonomy[m.merged]
                entry["aliases"] = [*entry.get("aliases", []), gone.name, *gone.aliases]
                entry["proposal"] = {"action": "merge", "merges": [_entry(gone)],
                                     "evidence": m.evidence()}
                entry["articles"] = m.articles
            elif cat.name in removed:
                r = removed[cat.name]
                entry["proposal"] = {"action": "remove", "evidence": r.evidence()}
                entry["articles"] = r.articles
            out.append(entry)
        for new in self.additions:
            out.append({"name": new.name, "description": new.description,
                        "keywords": new.keywords,
                        "proposal": {"action": "add", "evidence": new.evidence()},
                        "articles": new.articles})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"proposal": {**self.about, "additions": len(self.additions),
                             "merges": len(self.merges), "removals": len(self.removals)},
                "categories": self.entries()}

    def summary(self, out: str | Path) -> str:
        lines = [f"{len(self.additions)} new, {len(self.merges)} merged, "
                 f"{len(self.removals)} removed; nothing changes until a person accepts "
                 f"{out} (hybrid taxonomy diff, then hybrid retrain --taxonomy)"]
        for new in self.additions:
            where = (f"within {new.within}, " if new.within else
                     f"parent of {', '.join(new.parent_of)}; " if new.parent_of else "")
            lines.append(f"  new     {new.name} ({new.size} articles; {where}nearest "
                         f"{new.nearest}): {', '.join(new.keywords[:6])}")
            lines += [f"            · {title}" for title in new.examples]
        for m in self.merges:
            lines.append(f"  merge   {m.merged} → {m.into} ({m.confused} confused out of "
                         f"fold, {m.share:.0%} of the smaller)")
        for r in self.removals:
            lines.append(f"  remove  {r.name}: {r.reason}")
        return "\n".join(lines)


def _entry(cat: Category) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cat).items() if v}


def write_proposal(proposal: Proposal, out: str | Path, inputs: list[Any]) -> Path:
    """Written whole or not at all, never over an input; read back as a taxonomy first, so
    a file that `diff` and `retrain` would refuse is never left behind."""
    text = json.dumps(proposal.to_json(), ensure_ascii=False, indent=1)
    parse_taxonomy(json.loads(text), source=str(out))
    return write_text(out, text, inputs)


@dataclass
class Marked:
    """One proposed change as a proposal file holds it."""

    action: str
    name: str
    entry: dict[str, Any]

    @property
    def evidence(self) -> dict[str, Any]:
        return self.entry["proposal"].get("evidence") or {}

    @property
    def articles(self) -> list[str]:
        return self.entry.get("articles", [])


def read_proposal(path: str | Path) -> tuple[Taxonomy, list[Marked]]:
    """The list a proposal file proposes (checked as any taxonomy), and its marked changes."""
    taxonomy = load_taxonomy(path)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = data.get("categories", data) if isinstance(data, dict) else data
    return taxonomy, [Marked(action, entry["name"], entry) for entry in entries
                      if (action := proposal_action(entry)) is not None]
