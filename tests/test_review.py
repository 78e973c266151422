"""hybrid.labels.review: review files out, corrections back as manual labels."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner
from helpers import env, records

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit
from hybrid.labels.review import COLUMNS
from hybrid.mongo.store import Store


def cli(cache_dir, *args: str, environ: dict | None = None):
    return CliRunner().invoke(main, ["--quiet", "--cache-dir", str(cache_dir), *args],
                              env=environ or {"MONGODB_URI": ""})


def fill(path, answers: dict[str, tuple[str, str]]) -> None:
    """What a reviewer does in a spreadsheet: fill `categories` (and maybe `tags`)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["categories"], row["tags"] = answers.get(row["id"], ("", ""))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
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
        ids = [r["id"] for r in rows[:2]]
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
