"""When the category list changes: what changed, and what happens to existing labels.

A change is worked out from the two lists. A new category that lists an old name among its
aliases takes that old name's labels: one old name into a new name is a rename; several
old names into one new name, or an old name into a category that already existed, is a
merge. An old name that nothing takes is removed, and its labels dropped. A migration map
(JSON) can say what aliases cannot, and wins over them:

    {"rename": {"old": "new"}, "merge": {"old1": "new", "old2": "new"},
     "split": {"old": ["new1", "new2"]}, "remove": ["old"]}

A split drops the old labels (which half they belong to is unknown); the new categories
are predicted from their descriptions until someone labels them (`hybrid review`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hybrid.ingest.article import Article
from hybrid.ingest.keys import label_key
from hybrid.taxonomy.categories import Taxonomy, TaxonomyError

MAP_KEYS = ("rename", "merge", "split", "remove")


@dataclass
class Migration:
    """How labels under the old list become labels under the new one."""

    old_fingerprint: str
    new_fingerprint: str
    renamed: dict[str, str] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    split: dict[str, list[str]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    old_aliases: dict[str, str] = field(default_factory=dict)  # alias → changed old name

    @property
    def changed(self) -> list[str]:
        """Old names that no longer exist as they were: labels carrying them must move."""
        return [*self.renamed, *self.merged, *self.split, *self.removed]

    def old_name(self, label: str) -> str:
        """The old category a stored label stands for (labels may be old aliases)."""
        if label in self.old_aliases:
            return self.old_aliases[label]
        keys = {label_key(alias): name for alias, name in self.old_aliases.items()}
        return keys.get(label_key(label), label)

    def stored_as(self, name: str) -> list[str]:
        """An old name and its aliases, as labels may be stored."""
        return [name, *(a for a, n in self.old_aliases.items() if n == name)]

    def apply(self, labels: Iterable[str]) -> list[str]:
        """Labels under the new list: renamed and merged ones moved, split and removed ones
        dropped, anything else left for the new taxonomy to resolve."""
        out: list[str] = []
        for label in labels:
            name = self.old_name(label)
            target = self.renamed.get(name) or self.merged.get(name)
            if name in self.split or name in self.removed:
                continue
            out.append(target or label)
        return list(dict.fromkeys(out))

    def to_json(self) -> dict[str, Any]:
        return {"old_fingerprint": self.old_fingerprint, "new_fingerprint": self.new_fingerprint,
                "rename": self.renamed, "merge": self.merged, "split": self.split,
                "remove": self.removed, "add": self.added, "kept": self.kept,
                "old_aliases": self.old_aliases}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Migration:
        return cls(data["old_fingerprint"], data["new_fingerprint"], data["rename"],
                   data["merge"], data["split"], data["remove"], data["add"], data["kept"],
                   data["old_aliases"])

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Migration | None:
        """The change a model was retrained for (`hybrid retrain` records it), if any."""
        data = manifest.get("migration")
        return cls.from_json(data) if data else None

    def summary(self, impact: dict[str, dict[str, int]] | None = None) -> str:
        """One line per change; with `impact`, how many stored articles carry each old name."""
        def old(name: str) -> str:
            if impact is None:
                return name
            n = impact.get(name, {})
            manual = f", {n['manual']} manual" if n.get("manual") else ""
            return f"{name} ({n.get('articles', 0)} articles{manual})"

        merges: dict[str, list[str]] = {}
        for name, new in self.merged.items():
            merges.setdefault(new, []).append(name)
        lines = [f"renamed  {old(name)} → {new}" for name, new in self.renamed.items()]
        lines += [f"merged   {' + '.join(old(n) for n in names)} → {new}"
                  for new, names in merges.items()]
        lines += [f"split    {old(name)} → {', '.join(new)}" for name, new in self.split.items()]
        lines += [f"removed  {old(name)}" for name in self.removed]
        lines += [f"added    {new}" for new in self.added]
        return "\n".join(lines) or "no change to the category names"


def load_map(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) - set(MAP_KEYS):
        raise TaxonomyError(f"migration map {path}: expected an object with keys among "
                            f"{', '.join(MAP_KEYS)}")
    return data


def diff(old: Taxonomy, new: Taxonomy, explicit: dict[str, Any] | None = None) -> Migration:
    """Compare two category lists; `explicit` (a migration map) wins over aliases."""
    explicit = explicit or {}
    where = f"migration {old.source} → {new.source}"

    def old_name(label: str) -> str:
        name = old.resolve(label)
        if name is None:
            raise TaxonomyError(f"{where}: {label!r} is not a category of {old.source}")
        return name

    def new_name(label: str) -> str:
        name = new.resolve(label)
        if name is None:
            raise TaxonomyError(f"{where}: {label!r} is not a category of {new.source}")
        return name

    targets: dict[str, str] = {}  # old name → new name it moves to
    said: dict[str, str] = {}  # old name → "rename" or "merge", when the map says so
    split: dict[str, list[str]] = {}
    for kind in ("rename", "merge"):
        for old_label, new_label in (explicit.get(kind) or {}).items():
            targets[old_name(old_label)] = new_name(new_label)
            said[old_name(old_label)] = kind
    for old_label, new_labels in (explicit.get("split") or {}).items():
        split[old_name(old_label)] = [new_name(n) for n in new_labels]
    removed = [old_name(n) for n in explicit.get("remove") or []]
    decided = set(targets) | set(split) | set(removed)
    kept = []
    for name in old.names:
        if name in decided:
            continue
        if name in new.names:
            kept.append(name)
        elif new.resolve(name) is not None:
            targets[name] = new.resolve(name)  # type: ignore[assignment]
        else:
            removed.append(name)
    sources = Counter(targets.values())
    renamed = {o: n for o, n in targets.items() if said.get(o) == "rename" or (
        o not in said and sources[n] == 1 and n not in old.names)}
    merged = {o: n for o, n in targets.items() if o not in renamed}
    taken = set(kept) | set(targets.values())
    changed = set(targets) | set(split) | set(removed)
    aliases = {alias: c.name for c in old.categories if c.name in changed
               for alias in c.aliases}
    return Migration(old.fingerprint, new.fingerprint, renamed, merged, split, removed,
                     [n for n in new.names if n not in taken], kept, aliases)


def impact(migration: Migration, label_lists: Iterable[Sequence[str]]
           ) -> dict[str, dict[str, int]]:
    """How many articles carry each changed old name (an article counts once per name)."""
    changed = set(migration.changed)
    counts: Counter = Counter()
    for labels in label_lists:
        counts.update({migration.old_name(label) for label in labels} & changed)
    return {name: {"articles": counts[name]} for name in migration.changed}


def migrate_articles(articles: Sequence[Article], migration: Migration) -> list[Article]:
    return [replace(a, categories=migration.apply(a.categories)) for a in articles]
