"""The review loop: the model's least sure answers out to a spreadsheet, people's
corrections back in as manual labels.

A review file (CSV, opens in a spreadsheet; or JSONL) has one row per article: `id`,
`title`, the model's `suggested_categories`, `confidence`, `scores`, `suggested_tags`, and
two empty columns for the reviewer, `categories` and `tags`. Lists in a CSV cell are
separated by `;` (also `,`, `，`, `、` or `；`). On import, a row whose `categories` cell is
filled is a correction (to accept a suggestion, copy it); other rows were not reviewed.
Categories must be names or aliases of the model's taxonomy. An empty `tags` cell keeps the
article's tags as they are.

In MongoDB a correction is written as manual labels (`hybrid.source: "manual"`): runs never
overwrite them and `hybrid train --label-source manual` learns from them.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from bson import ObjectId

from hybrid.config import Config
from hybrid.ingest.article import Article
from hybrid.ingest.clean import clean
from hybrid.ingest.records import load_articles, read_jsonl, to_json
from hybrid.labels.ledger import FileLedger, Label, StoreLedger
from hybrid.labels.select import diverse, uncertain
from hybrid.learn.model import HybridModel
from hybrid.learn.prediction import Prediction
from hybrid.mongo.store import STATE, Store
from hybrid.taxonomy import Taxonomy

COLUMNS = ["id", "title", "suggested_categories", "confidence", "scores", "suggested_tags",
           "categories", "tags"]
_SEPARATORS = re.compile(r"[;,；，、\n]")
SCORES_SHOWN = 3


@dataclass
class Row:
    id: str
    title: str
    suggested_categories: list[str]
    confidence: float
    scores: dict[str, float]
    suggested_tags: list[str]
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Correction:
    id: str
    categories: list[str]
    tags: list[str] | None  # None: keep the article's tags


def _top(scores: dict[str, float]) -> dict[str, float]:
    return dict(sorted(scores.items(), key=lambda kv: -kv[1])[:SCORES_SHOWN])


def rows_from_predictions(articles: Sequence[Article], predictions: Sequence[Prediction]
                          ) -> list[Row]:
    return [Row(a.id, a.title, p.categories, round(p.confidence, 4), _top(p.scores), p.tags)
            for a, p in zip(articles, predictions, strict=True) if not p.error]


def select(rows: Iterable[Row], low_confidence: float | None, limit: int | None) -> list[Row]:
    """Least sure first; with `low_confidence`, only those under it."""
    chosen = [r for r in rows if low_confidence is None or r.confidence < low_confidence]
    return sorted(chosen, key=lambda r: r.confidence)[:limit]


def rows_from_file(model: HybridModel, data: str | Path, config: Config) -> list[Row]:
    """Suggestions of `model` for the articles of a JSONL file."""
    articles = load_articles(data, config)
    return rows_from_predictions(articles, model.predict(articles))


def rows_from_store(store: Store, below: float | None, limit: int | None) -> list[Row]:
    """Suggestions the nightly job stored, least sure first, never manual articles."""
    config = store.config
    rows = []
    for doc in store.suggestions(below, limit):
        state = doc.get(STATE) or {}
        scores = {s["category"]: s["score"] for s in state.get("scores") or []}
        rows.append(Row(str(doc["_id"]), doc["title"],
                        list(doc.get(config.categories_field) or []),
                        round(state["confidence"], 4), _top(scores),
                        list(doc.get(config.tags_field) or [])))
    return rows


def write_rows(rows: Sequence[Row], path: str | Path) -> None:
    """CSV (UTF-8 with a byte-order mark, which spreadsheets need to read Chinese) or JSONL."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS)
            writer.writeheader()
            for row in rows:
                cells = asdict(row)
                for key in ("suggested_categories", "suggested_tags", "categories", "tags"):
                    cells[key] = "; ".join(cells[key])
                cells["scores"] = "; ".join(f"{k} {v:.2f}" for k, v in row.scores.items())
                writer.writerow(cells)
        return
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(to_json(asdict(row)) + "\n")


def _cell_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in _SEPARATORS.split(str(value or "")) if part.strip()]


def read_corrections(path: str | Path, taxonomy: Taxonomy
                     ) -> tuple[list[Correction], dict[str, str]]:
    """(corrections, errors by article id). A row naming a category outside the taxonomy is
    an error, never a label."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            raw = list(csv.DictReader(fh))
    else:
        raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    corrections, errors = [], {}
    for number, row in enumerate(raw, 2 if path.suffix.lower() == ".csv" else 1):
        article_id = str(row.get("id") or "").strip()
        given = _cell_list(row.get("categories"))
        if not given:
            continue
        if not article_id:
            errors[f"row {number}"] = "no id"
            continue
        try:
            corrections.append(correction(article_id, given, _cell_list(row.get("tags")),
                                          taxonomy))
        except ValueError as exc:
            errors[article_id] = str(exc)
    return corrections, errors


def correction(article_id: str, categories: Sequence[str], tags: Sequence[str],
               taxonomy: Taxonomy) -> Correction:
    """A person's labels for one article, checked as every path that stores them checks
    them (`review import`, `hybrid serve`'s feedback); `ValueError` names what is wrong.
    No tags: keep the article's."""
    names, unknown = taxonomy.map_labels(list(categories))
    if unknown:
        raise ValueError(f"not in the taxonomy: {', '.join(unknown)} (known: "
                         f"{', '.join(taxonomy.names)})")
    return Correction(article_id, names, list(tags) or None)


def correct_file(data: str | Path, out: str | Path, corrections: Sequence[Correction],
                 config: Config) -> dict[str, str]:
    """Write `data` (labelled JSONL) to `out` with the corrections applied; returns errors by
    article id for the corrections whose article is not in `data`."""
    by_id = {c.id: c for c in corrections}
    seen = set()
    with open(out, "w", encoding="utf-8") as fh:
        for record in read_jsonl(data):
            if not isinstance(record, dict):
                continue
            key = str(record.get(config.id_field))
            fix = by_id.get(key)
            if fix is not None:
                seen.add(key)
                record = {**record, config.categories_field: fix.categories}
                if fix.tags is not None:
                    record[config.tags_field] = fix.tags
            fh.write(to_json(record) + "\n")
    return {c.id: f"not in {data}" for c in corrections if c.id not in seen}


def _id_candidates(raw: str) -> list[Any]:
    """The id as a CSV cell holds it, and as the ObjectId or number it may have been."""
    out: list[Any] = [raw]
    if ObjectId.is_valid(raw):
        out.append(ObjectId(raw))
    if re.fullmatch(r"-?\d+", raw):
        out.append(int(raw))
    return out


def write_to_store(store: Store, corrections: Sequence[Correction]) -> dict[str, str]:
    """Write each correction as manual labels; returns errors by article id."""
    errors = {}
    for fix in corrections:
        key = store.find_id(_id_candidates(fix.id))
        if key is None:
            errors[fix.id] = f"no article with _id {fix.id} in {store.where}"
            continue
        store.set_manual(key, fix.categories, fix.tags)
    return errors


def export(out: str | Path, config: Config, below: float | None, limit: int | None,
           model_dir: str | Path | None = None, data: str | Path | None = None,
           choose: str | None = None) -> int:
    """Write a review file: `model_dir`'s suggestions for the articles of `data`, else the
    suggestions stored in MongoDB; with `choose` ("uncertain" or "diverse"), the articles
    where a person's label helps most, among those not labelled yet. Returns the rows."""
    if choose is not None:
        model = HybridModel.load(model_dir, config=config)
        rows = chosen_rows(model, review_articles(config, data), choose, limit or 100)
    elif data is not None:
        model = HybridModel.load(model_dir, config=config)
        rows = select(rows_from_file(model, data, config), below, limit)
    else:
        with Store(config) as store:
            rows = rows_from_store(store, below, limit)
    write_rows(rows, out)
    return len(rows)


def review_articles(config: Config, data: str | Path | None = None,
                    labels: str | Path | None = None) -> list[Article]:
    """The articles to choose from, those already labelled with their categories (so they
    are not chosen again): `data` (JSONL) with the labels of the ledger `labels`, else the
    collection with its manual and teacher labels."""
    if data is not None:
        labelled = FileLedger(labels).labels() if labels is not None else {}
        articles = load_articles(data, config)
    else:
        with Store(config) as store:
            ledger = StoreLedger(store)
            labelled = ledger.labels()
            articles = ledger.articles()
    return [replace(a, categories=labelled[a.id].categories) if a.id in labelled else a
            for a in articles]


def chosen_rows(model: HybridModel, articles: Sequence[Article], choose: str, limit: int
                ) -> list[Row]:
    """The `limit` unlabelled articles the model is least sure of ("uncertain", spread out)
    or that best cover the corpus ("diverse"), as the bootstrap would choose them."""
    texts = [clean(a) for a in articles]
    features = model.featurize(texts)
    predictions = model.predict_features(features, [a.id for a in articles], texts)
    embeddings = np.vstack([f.embedding for f in features])
    labelled = [i for i, a in enumerate(articles) if a.categories]
    if choose == "uncertain":
        names = model.taxonomy.names
        proba = np.array([[p.scores[n] for n in names] for p in predictions])
        picked = uncertain(proba, embeddings, limit, labelled)
    else:
        picked = diverse(embeddings, limit, labelled)
    return rows_from_predictions([articles[i] for i in picked],
                                 [predictions[i] for i in picked])


def import_corrections(infile: str | Path, taxonomy: Taxonomy, config: Config,
                       data: str | Path | None = None, out: str | Path | None = None,
                       labels: str | Path | None = None) -> tuple[int, dict[str, str], str]:
    """Apply a reviewed file to `data` (written to `out`), to a label ledger (`hybrid
    bootstrap --labels`), else to MongoDB as manual labels. Returns (corrections read,
    errors by article id, where they went)."""
    corrections, errors = read_corrections(infile, taxonomy)
    if labels is not None:
        write_to_ledger(FileLedger(labels), corrections)
        return len(corrections), errors, str(labels)
    if data is not None:
        errors.update(correct_file(data, out, corrections, config))
        return len(corrections), errors, str(out)
    with Store(config) as store:
        errors.update(write_to_store(store, corrections))
        return len(corrections), errors, store.where


def write_to_ledger(ledger: FileLedger, corrections: Sequence[Correction]) -> None:
    """Add each correction to a label ledger as a person's label."""
    for fix in corrections:
        ledger.add(Label(fix.id, fix.categories, fix.tags or [], "manual"))
