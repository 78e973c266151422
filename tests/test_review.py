"""hybrid.labels.review: review files out, corrections back as manual labels."""

from __future__ import annotations

import csv
import json

from bson import Decimal128
from click.testing import CliRunner
from helpers import env, records

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit
from hybrid.ingest.ids import id_key
from hybrid.labels.review import COLUMNS
from hybrid.mongo.store import Store


def cli(cache_dir, *args: str, environ: dict | None = None):
    return CliRunner().invoke(main, ["--quiet", "--cache-dir", str(cache_dir), *args],
                              env=environ or {"MONGODB_URI": ""})


def fill(path, answers: dict[str, tuple[str, str]]) -> None:
    """What a reviewer does in a spreadsheet: fill `categories` (and maybe `tags`)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        rows, columns = list(reader), reader.fieldnames
    key = columns[0]  # "id", or "_id" for MongoDB articles
    for row in rows:
        row["categories"], row["tags"] = answers.get(row[key], ("", ""))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_file_round_trip(sample_model_dir, cache_dir, tmp_path):
    review = tmp_path / "review.csv"
    result = cli(cache_dir, "review", "export", "--model", str(sample_model_dir), "--data",
                 str(data.path("sample_unseen.jsonl")), "--limit", "4", "--out", str(review))
    assert result.exit_code == 0, result.output
    assert review.read_bytes().startswith(b"\xef\xbb\xbf")  # spreadsheets need the BOM
    with review.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and list(rows[0]) == COLUMNS
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences) and rows[0]["suggested_categories"]
    first, second, third = rows[0]["id"], rows[1]["id"], rows[2]["id"]
    fill(review, {first: ("DB；人工智能", "redis, 持久化"), second: ("区块链", ""),
                  third: (rows[2]["suggested_categories"], "")})
    fixed = tmp_path / "fixed.jsonl"
    result = cli(cache_dir, "review", "import", str(review), "--model", str(sample_model_dir),
                 "--data", str(data.path("sample_unseen.jsonl")), "--out", str(fixed))
    assert result.exit_code == Exit.PARTIAL and "区块链" in result.output
    out = {r["id"]: r for r in map(json.loads, fixed.read_text(encoding="utf-8").splitlines())}
    assert out[first]["categories"] == ["数据库", "人工智能"]
    assert out[first]["tags"] == ["redis", "持久化"]
    assert out[third]["categories"] == rows[2]["suggested_categories"].split("; ")
    original = {r["id"]: r for r in map(json.loads, data.path("sample_unseen.jsonl").read_text(
        encoding="utf-8").splitlines())}
    assert out[second] == original[second] and out[third]["tags"] == original[third]["tags"]


def test_corrections_in_mongo_are_manual_and_survive_runs(sample_model_dir, mongo_config,
                                                          cache_dir, tmp_path):
    environ = env(mongo_config)
    review = tmp_path / "review.csv"
    with Store(mongo_config) as store:
        store.import_records(records(12))
        assert cli(cache_dir, "run", "--model", str(sample_model_dir),
                   environ=environ).exit_code == 0
        result = cli(cache_dir, "review", "export", "--limit", "5", "--out", str(review),
                     environ=environ)
        assert result.exit_code == 0, result.output
        with review.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 5 and all(r["scores"] for r in rows)
        lowest = min(d["hybrid"]["confidence"] for d in store.articles.find())
        assert float(rows[0]["confidence"]) == round(lowest, 4)
        assert next(iter(rows[0])) == "_id"  # the _id, with its type (a string: bare)
        ids = [r["_id"] for r in rows[:2]]
        fill(review, {ids[0]: ("编程语言", "rust"), ids[1]: ("移动开发; 前端开发", "")})
        result = cli(cache_dir, "review", "import", str(review), "--model",
                     str(sample_model_dir), environ=environ)
        assert result.exit_code == 0, result.output
        tags_before = store.articles.find_one({"_id": ids[1]})["tags"]
        rerun = cli(cache_dir, "run", "--model", str(sample_model_dir), "--all", "--json",
                    environ=environ)
        assert json.loads(rerun.stdout.splitlines()[-1])["counts"]["skipped_manual"] == 2
        first, second = (store.articles.find_one({"_id": i}) for i in ids)
        manual = {r["_id"]: r["categories"] for r in store.label_records()}
    assert (first["categories"], first["tags"]) == (["编程语言"], ["rust"])
    assert (second["categories"], second["tags"]) == (["移动开发", "前端开发"], tags_before)
    assert first["hybrid"]["source"] == second["hybrid"]["source"] == "manual"
    assert manual == {ids[0]: ["编程语言"], ids[1]: ["移动开发", "前端开发"]}  # next training


def test_export_with_low_confidence_only_takes_articles_under_the_setting(
        sample_model_dir, cache_dir, tmp_path):
    review = tmp_path / "review.jsonl"
    result = CliRunner().invoke(main, [
        "--quiet", "--cache-dir", str(cache_dir), "review", "export", "--low-confidence",
        "--model", str(sample_model_dir), "--data", str(data.path("sample_unseen.jsonl")),
        "--out", str(review)], env={"MONGODB_URI": "", "HYBRID_LOW_CONFIDENCE": "0.99"})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in review.read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["confidence"] < 0.99 and r["categories"] == [] for r in rows)
    assert isinstance(rows[0]["suggested_categories"], list)


def test_review_files_carry_the_id_with_its_type(sample_model_dir, mongo_config, cache_dir,
                                                 tmp_path):
    """`_id` 1 and "1" are two articles: each row names its own, in CSV and in JSONL, and a
    correction lands on the article it was made for."""
    environ = env(mongo_config)
    ids = [1, "1", {"n": 1}, Decimal128("1.5")]
    with Store(mongo_config) as store:
        store.articles.insert_many([{**{k: v for k, v in d.items() if k != "id"}, "_id": i}
                                    for d, i in zip(records(4), ids, strict=True)])
        assert cli(cache_dir, "run", "--model", str(sample_model_dir),
                   environ=environ).exit_code == 0
        review, lines = tmp_path / "review.csv", tmp_path / "review.jsonl"
        for path in (review, lines):
            result = cli(cache_dir, "review", "export", "--out", str(path), environ=environ)
            assert result.exit_code == 0, result.output
        with review.open(encoding="utf-8-sig", newline="") as fh:
            cells = sorted(r["_id"] for r in csv.DictReader(fh))
        assert cells == sorted(['1', '"1"', '{"n": 1}', '{"$numberDecimal": "1.5"}'])
        rows = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
        assert sorted(map(json.dumps, (r["_id"] for r in rows))) == sorted(
            ['1', '"1"', '{"n": 1}', '{"$numberDecimal": "1.5"}'])

        fill(review, {'"1"': ("编程语言", "rust")})
        result = cli(cache_dir, "review", "import", str(review), "--model",
                     str(sample_model_dir), environ=environ)
        assert result.exit_code == 0, result.output
        with lines.open("w", encoding="utf-8") as fh:
            for row in rows:
                if row["_id"] == {"$numberDecimal": "1.5"}:
                    row["categories"] = ["数据库"]
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        result = cli(cache_dir, "review", "import", str(lines), "--model",
                     str(sample_model_dir), environ=environ)
        assert result.exit_code == 0, result.output
        manual = {id_key(d["_id"]): d["categories"]
                  for d in store.articles.find({"hybrid.source": "manual"})}
    assert manual == {'"1"': ["编程语言"], '{"$numberDecimal": "1.5"}': ["数据库"]}


def test_a_review_file_from_before_imports_where_its_id_names_one_article(
        sample_model_dir, mongo_config, cache_dir, tmp_path):
    """Such files have an `id` column of bare text (`str(_id)`)."""
    environ = env(mongo_config)
    with Store(mongo_config) as store:
        store.articles.insert_many([{**{k: v for k, v in d.items() if k != "id"}, "_id": i}
                                    for d, i in zip(records(3), [1, "1", 7], strict=True)])
        old = tmp_path / "old.csv"
        with old.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS)
            writer.writeheader()
            for article_id in ("1", "7"):
                writer.writerow({"id": article_id, "categories": "数据库"})
        result = cli(cache_dir, "review", "import", str(old), "--model",
                     str(sample_model_dir), environ=environ)
        assert result.exit_code == Exit.PARTIAL
        assert "error: article '1': id 1 names 2 articles" in result.stderr
        assert "export it again" in result.stderr
        manual = [d["_id"] for d in store.articles.find({"hybrid.source": "manual"})]
    assert manual == [7]
