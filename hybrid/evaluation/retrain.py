"""Retraining for a changed category list, and the old model's scores beside the new one's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid.config import Config
from hybrid.ingest.article import Article
from hybrid.learn.model import HybridModel
from hybrid.taxonomy import Taxonomy
from hybrid.taxonomy.change import Migration, diff, migrate_articles


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

    def as_dict(self) -> dict[str, Any]:
        return {"migration": self.migration.to_json(), "relabelled": self.relabelled,
                "seconds": round(self.seconds, 2), "old_training_seconds": self.old_seconds,
                "cache": {"hits": self.cache_hits, "misses": self.cache_misses},
                "metrics": self.comparison}

    def summary(self, out: str | Path) -> str:
        old = f"{self.old_seconds:.1f}s" if self.old_seconds is not None else "not recorded"
        return (f"{self.migration.summary()}\n\n{self.relabelled} articles relabelled; "
                f"retrained in {self.seconds:.1f}s (the old model: {old}); embedding cache: "
                f"{self.cache_hits} hits, {self.cache_misses} misses → {out}")


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
