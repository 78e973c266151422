"""When the category list changes: what changed, what happens to existing labels, and the
retraining that follows.

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
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hybrid.article import Article
from hybrid.config import Config
from hybrid.model import HybridModel
from hybrid.taxonomy import Taxonomy, TaxonomyError, _key

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
        keys = {_key(alias): name for alias, name in self.old_aliases.items()}
        return keys.get(_key(label), label)

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


def compare(old: dict[str, Any], new: dict[str, Any], migration: Migration) -> list[dict]:
    """Per new category: its out-of-fold P/R/F1 now, beside the old category (or categories)
    it comes from; then the removed and split ones, which have no row of their own."""
    old_per, new_per = old.get("per_category", {}), new.get("per_category", {})
    sources: dict[str, list[str]] = {n: [n] for n in migration.kept}
    for o, n in [*migration.renamed.items(), *migration.merged.items()]:
        sources.setdefault(n, []).append(o)
    rows = []
    for name, m in new_per.items():
        before = [old_per[o] for o in sources.get(name, []) if o in old_per]
        labelled = m["support"] > 0  # else predicted from its description: nothing to score
        rows.append({"category": name, "from": ", ".join(sources.get(name, [])) or "new",
                     "old_f1": _weighted(before, "f1"), "old_support":
                     sum(b["support"] for b in before) if before else None,
                     **{f"new_{k}": m[k] if labelled else None
                        for k in ("precision", "recall", "f1")},
                     "new_support": m["support"]})
    for name in [*migration.split, *migration.removed]:
        if name in old_per:
            rows.append({"category": "", "from": name, "old_f1": old_per[name]["f1"],
                         "old_support": old_per[name]["support"], "new_precision": None,
                         "new_recall": None, "new_f1": None, "new_support": None})
    return rows


def _weighted(parts: list[dict[str, Any]], key: str) -> float | None:
    """Support-weighted mean, so a merge compares with its sources taken together."""
    total = sum(p["support"] for p in parts)
    if not parts or not total:
        return None
    return sum(p[key] * p["support"] for p in parts) / total


@dataclass
class Retrained:
    model: HybridModel
    migration: Migration
    comparison: list[dict[str, Any]]
    seconds: float
    old_seconds: float | None  # the old model's training, which may have read the cache too
    cache_hits: int
    cache_misses: int
    relabelled: int  # articles whose labels the migration changed


def retrain(old_dir: str | Path, articles: Sequence[Article], new: Taxonomy, config: Config,
            explicit: dict[str, Any] | None = None,
            progress: Callable[[str], None] = lambda _: None) -> Retrained:
    """Train for the new list with the old model's embedder and text settings, so every
    article's embedding comes from the cache; labels are moved through the migration."""
    old_model = HybridModel.load(old_dir, config=config)
    old_tax = old_model.taxonomy
    migration = diff(old_tax, new, explicit)
    moved = migrate_articles(articles, migration)
    relabelled = sum(a.categories != b.categories for a, b in zip(articles, moved, strict=True))
    settings = {k: old_model.settings[k] for k in ("embedder", "embed_budget",
                                                   "tag_prefix_chars")}
    config = config.with_overrides(**settings)
    embedder = old_model.featurizer.embedder
    hits, misses = getattr(embedder, "hits", 0), getattr(embedder, "misses", 0)
    model = HybridModel.train(moved, new, config, embedder=embedder, progress=progress)
    seconds = model.manifest["training"]["seconds"]
    model.manifest["migration"] = migration.to_json()
    model.manifest["retrained_from"] = {"model": str(old_dir),
                                        "taxonomy_fingerprint": old_tax.fingerprint}
    return Retrained(model, migration, compare(old_model.manifest.get("metrics", {}),
                                               model.manifest["metrics"], migration),
                     seconds, old_model.manifest.get("training", {}).get("seconds"),
                     getattr(embedder, "hits", 0) - hits,
                     getattr(embedder, "misses", 0) - misses, relabelled)


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """Old against new, one line per category (out-of-fold scores of each training)."""
    def cell(value: Any, width: int) -> str:
        if value is None:
            return f"{'-':>{width}}"
        return f"{value:>{width}.3f}" if isinstance(value, float) else f"{value:>{width}}"

    lines = [f"{_pad('category', 20)} {_pad('from', 28)} {'old F1':>7} {'n':>5}   "
             f"{'new P':>6} {'new R':>6} {'new F1':>6} {'n':>5}"]
    for r in rows:
        lines.append(f"{_pad(r['category'], 20)} {_pad(r['from'], 28)} {cell(r['old_f1'], 7)} "
                     f"{cell(r['old_support'], 5)}   {cell(r['new_precision'], 6)} "
                     f"{cell(r['new_recall'], 6)} {cell(r['new_f1'], 6)} "
                     f"{cell(r['new_support'], 5)}")
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    """Left-align in a terminal, where a Chinese character takes two columns."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - used, 0)


def _stored_names(migration: Migration, name: str) -> list[str]:
    """An old name and its aliases, as labels may be stored."""
    return [name, *(a for a, n in migration.old_aliases.items() if n == name)]


def stored_impact(store: Any, migration: Migration) -> dict[str, dict[str, int]]:
    """How many articles of a MongoDB collection carry each changed old name, and how many
    of those are manual."""
    from hybrid.store import MANUAL

    field_name = store.config.categories_field
    out = {}
    for name in migration.changed:
        query = {field_name: {"$in": _stored_names(migration, name)}}
        out[name] = {
            "articles": store.call("counting", lambda q=query: store.labels.count_documents(q)),
            "manual": store.call("counting", lambda q=query: store.labels.count_documents(
                {"$and": [q, MANUAL]}))}
    return out


def relabel_manual(store: Any, migration: Migration, dry_run: bool = False) -> int:
    """Move manual labels to the new names (a rename keeps the reviewer's decision). An
    article left with no label loses its manual mark, so the next run tags it."""
    from pymongo import UpdateOne

    from hybrid.store import MANUAL, STATE

    field_name = store.config.categories_field
    stored = [s for name in migration.changed for s in _stored_names(migration, name)]
    docs = store.call("reading manual labels", lambda: list(store.labels.find(
        {"$and": [{field_name: {"$in": stored}}, MANUAL]}, {field_name: 1})))
    ops = []
    for doc in docs:
        labels = migration.apply(doc[field_name])
        update: dict[str, Any] = {"$set": {field_name: labels}}
        if not labels:
            update["$unset"] = {f"{STATE}.source": "", f"{STATE}.content_hash": ""}
        ops.append(UpdateOne({"_id": doc["_id"], field_name: doc[field_name]}, update))
    if ops and not dry_run:
        store.call("relabelling manual articles", lambda: store.labels.bulk_write(ops))
    return len(ops)
