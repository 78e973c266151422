"""The review loop: the model's least sure answers out to a spreadsheet, people's
corrections back in as manual labels.

A review file (CSV, opens in a spreadsheet; or JSONL: `hybrid.labels.review_file`) has one
row per article: its id (`id` or `_id`, below), `title`, the model's `suggested_categories`,
`confidence`, `scores`, `suggested_tags`, and two empty columns for the reviewer,
`categories` and `tags`. Lists in a CSV cell are separated by `;` (also `,`, `，`, `、` or
`；`). On import, a row whose `categories` cell is filled is a correction (to accept a
suggestion, copy it); other rows were not reviewed. Categories must be names or aliases of
the model's taxonomy, at most `max_categories` of them; tags are cleaned as on every other
path (`plain_tag`), and a tag that cleaning refuses makes the row an error. An empty `tags`
cell keeps the article's tags as they are. Two rows that correct one article differently
are an error, not last-wins.

The id column is `id` for articles of a JSONL file (their id field), and `_id` for articles
of MongoDB: the `_id` with its type, as relaxed Extended JSON (`hybrid.ingest.ids.id_key`),
so `1` (a number), `"1"` (a string) and `{"$oid": "…"}` are three articles. A file from
before ids carried their type has an `id` column of bare text: it still imports where the
text names one article only.

In MongoDB a correction is written as manual labels (`hybrid.source: "manual"`): runs never
overwrite them and `hybrid train --label-source manual` learns from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.config import Config
from hybrid.ingest.article import Article, article_id_of
from hybrid.ingest.clean import clean
from hybrid.ingest.ids import id_key, id_value, json_key
from hybrid.ingest.records import load_articles, parse_json, to_json
from hybrid.labels.corrections import (
    Correction,
    Refused,
    correction,
    write_to_ledger,
    write_to_store,
)
from hybrid.labels.ledger import FileLedger, StoreLedger
from hybrid.labels.review_file import is_csv, read_table, write_table
from hybrid.labels.select import diverse, uncertain
from hybrid.learn.model import HybridModel
from hybrid.learn.prediction import Prediction
from hybrid.mongo.store import STATE, Store
from hybrid.output import open_output, refuse_inputs
from hybrid.taxonomy import Taxonomy

MONGO_ID = "_id"  # the id column of rows about MongoDB articles
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
        rows.append(Row(id_key(doc["_id"]), doc["title"],
                        list(doc.get(config.categories_field) or []),
                        round(state["confidence"], 4), _top(scores),
                        list(doc.get(config.tags_field) or [])))
    return rows


def write_rows(rows: Sequence[Row], path: str | Path, ids: str = "id",
               inputs: Iterable[str | Path | None] = ()) -> None:
    """CSV (for a spreadsheet: lists as `a; b`, formula-safe cells) or JSONL; refused when
    `path` is one of `inputs`. `ids` is the id column: "id", or `MONGO_ID` for rows about
    MongoDB articles, whose ids are `id_key`s (as Extended JSON in a JSONL file, as its text
    in a CSV cell)."""
    def cells(row: Row) -> dict[str, Any]:
        out = asdict(row)
        key = out.pop("id")
        if is_csv(path):
            for name in ("suggested_categories", "suggested_tags", "categories", "tags"):
                out[name] = "; ".join(out[name])
            out["scores"] = "; ".join(f"{k} {v:.2f}" for k, v in row.scores.items())
        elif ids == MONGO_ID:
            key = _extended_json(key)
        return {ids: key, **out}

    write_table(path, [ids if c == "id" else c for c in COLUMNS], map(cells, rows), inputs)


def _extended_json(key: str) -> Any:
    """An `id_key` as the JSON value it is (a bare string key: that string)."""
    try:
        return json.loads(key)
    except ValueError:
        return key


def _row_id(row: dict[str, Any], csv_file: bool) -> tuple[str, bool]:
    """(the article's key, typed): from the `_id` column (relaxed Extended JSON), else the
    `id` column (bare text, as files from before ids carried their type hold it)."""
    if MONGO_ID in row:
        value = row[MONGO_ID]
        if not csv_file:
            return ("" if value is None else json_key(value)), True
        text = str(value or "").strip()
        return (id_key(id_value(text)) if text else "", True)
    return str(row.get("id") or "").strip(), False


def _cell_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in _SEPARATORS.split(str(value or "")) if part.strip()]


def read_corrections(path: str | Path, taxonomy: Taxonomy, max_categories: int = 3
                     ) -> tuple[list[Correction], dict[str, str]]:
    """(corrections, errors by article id, or by row when it has none). A row naming a
    category outside the taxonomy, more than `max_categories`, or a tag that is no plain
    text (`plain_tag`, as every tag path) is an error, never a label; so are two rows that
    correct one article differently."""
    found: dict[str, list[tuple[str, Correction]]] = {}
    errors: dict[str, str] = {}
    for where, row in read_table(path, (("id", MONGO_ID), "categories")):
        if isinstance(row, str):
            _add(errors, where, row)
            continue
        article_id, typed = _row_id(row, is_csv(path))
        given = _cell_list(row.get("categories"))
        if not given:
            continue
        if not article_id:
            _add(errors, where, "no id")
            continue
        try:
            fix = correction(article_id, given, _cell_list(row.get("tags")), taxonomy,
                             max_categories, typed)
        except Refused as exc:
            _add(errors, article_id, f"{where}, {exc}")
            continue
        found.setdefault(article_id, []).append((where, fix))
    corrections = []
    for article_id, rows in found.items():
        if any(fix != rows[0][1] for _, fix in rows):
            _add(errors, article_id, f"{' and '.join(w for w, _ in rows)} correct it "
                                     "differently; neither was applied")
        else:
            corrections.append(rows[0][1])
    return corrections, errors


def _add(errors: dict[str, str], key: str, message: str) -> None:
    errors[key] = f"{errors[key]}; {message}" if key in errors else message


def correct_file(data: str | Path, out: str | Path, corrections: Sequence[Correction],
                 config: Config) -> dict[str, str]:
    """Write `data` (labelled JSONL) to `out` with the corrections applied, every other line
    as it was (one that does not parse too); returns errors by article id for the
    corrections whose article is not in `data`."""
    by_id = {c.id: c for c in corrections}
    seen = set()
    with (open(data, encoding="utf-8", errors="surrogateescape", newline="") as lines,
          open_output(out, inputs=[data], errors="surrogateescape", newline="") as fh):
        for number, line in enumerate(lines, 1):
            record = parse_json(line, f"line {number}") if line.strip() else None
            fix = by_id.get(article_id_of(record, config.id_field)) \
                if isinstance(record, dict) else None
            if fix is not None:
                seen.add(fix.id)
                record = {**record, config.categories_field: fix.categories}
                if fix.tags is not None:
                    record[config.tags_field] = fix.tags
                line = to_json(record) + "\n"
            fh.write(line)
    return {c.id: f"not in {data}" for c in corrections if c.id not in seen}


def export(out: str | Path, config: Config, below: float | None, limit: int | None,
           model_dir: str | Path | None = None, data: str | Path | None = None,
           choose: str | None = None) -> int:
    """Write a review file: `model_dir`'s suggestions for the articles of `data`, else the
    suggestions stored in MongoDB; with `choose` ("uncertain" or "diverse"), the articles
    where a person's label helps most, among those not labelled yet. Returns the rows."""
    refuse_inputs(out, [data, model_dir])
    if choose is not None:
        model = HybridModel.load(model_dir, config=config)
        rows = chosen_rows(model, review_articles(config, data), choose, limit or 100)
    elif data is not None:
        model = HybridModel.load(model_dir, config=config)
        rows = select(rows_from_file(model, data, config), below, limit)
    else:
        with Store(config) as store:
            rows = rows_from_store(store, below, limit)
    write_rows(rows, out, "id" if data is not None else MONGO_ID, inputs=[data, model_dir])
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
    bootstrap --labels`), else to MongoDB as manual labels. Returns (corrections written,
    errors by article id, where they went)."""
    refuse_inputs(out, [infile, data])
    refuse_inputs(labels, [infile, data])
    corrections, errors = read_corrections(infile, taxonomy, config.max_categories)
    if labels is not None:
        write_to_ledger(FileLedger(labels), corrections)
        return len(corrections), errors, str(labels)
    if data is not None:
        failed = correct_file(data, out, corrections, config)
        return _written(corrections, failed, errors), errors, str(out)
    with Store(config) as store:
        failed = write_to_store(store, corrections)
        return _written(corrections, failed, errors), errors, store.where


def _written(corrections: Sequence[Correction], failed: dict[str, str],
             errors: dict[str, str]) -> int:
    """How many of `corrections` were written, the `failed` ones added to `errors`."""
    for key, message in failed.items():
        _add(errors, key, message)
    return len(corrections) - len(failed)
