import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hybrid.cli import EXIT_MODEL, EXIT_PARTIAL, EXIT_USAGE, bundled, main

COMMANDS = ["train", "predict", "tag-file", "eval", "cv", "demo"]


@pytest.fixture
def run(cache_dir):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, ["--quiet", "--cache-dir", str(cache_dir), *args], input=input)
    return invoke


def test_console_script_has_help_for_every_command():
    top = subprocess.run([sys.executable, "-m", "hybrid.cli", "--help"], capture_output=True,
                         text=True, check=True)
    for command in COMMANDS:
        assert command in top.stdout
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_predict_from_stdin_prints_the_contract(run, sample_model_dir):
    article = {"id": "p1", "title": "Kubernetes HPA 自动扩缩容",
               "content": "基于 CPU 指标配置 HorizontalPodAutoscaler，结合 Prometheus 自定义指标。"}
    result = run("predict", "--model", str(sample_model_dir),
                 input=json.dumps(article, ensure_ascii=False))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"categories", "tags"} and out["categories"][0] == "云计算与DevOps"


def test_predict_explain(run, sample_model_dir, tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"id": "p2", "title": "SQL 注入防护", "content": "参数化查询。"},
                               ensure_ascii=False), encoding="utf-8")
    result = run("predict", str(path), "--model", str(sample_model_dir), "--explain", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"scores", "confidence", "neighbours", "keyword_scores"} <= set(out)


def test_predict_bad_article_names_the_field(run, sample_model_dir):
    result = run("predict", "--model", str(sample_model_dir), input='{"id": "b", "content": 7}')
    assert result.exit_code == EXIT_USAGE
    assert "'b'" in result.output and "content" in result.output


def test_tag_file_streams_and_survives_bad_records(run, sample_model_dir, tmp_path):
    infile, outfile = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = bundled("sample_unseen.jsonl").read_text(encoding="utf-8").splitlines()
    bad = ['{"id": "n1", "title": "t", "content": 12}', "{not json",
           '{"id": "n2", "title": "t", "content": ["a"]}',
           json.dumps({"id": "big", "title": "大文章", "content": "<p>" + "长" * 5_000_000})]
    infile.write_text("\n".join(good[:3] + bad + good[3:]) + "\n", encoding="utf-8")
    result = run("tag-file", str(infile), str(outfile), "--model", str(sample_model_dir),
                 "--batch-size", "4", "--json")
    assert result.exit_code == EXIT_PARTIAL, result.output
    rows = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(good) + len(bad)
    assert [r["id"] for r in rows[:3]] == ["u001", "u002", "u003"]
    errors = {r["id"]: r["error"] for r in rows if "error" in r}
    assert set(errors) == {"n1", "n2", "line 5"} and "content" in errors["n1"]
    big = next(r for r in rows if r["id"] == "big")
    assert big["categories"] and "error" not in big
    assert json.loads(result.stdout)["failed"] == 3


def test_tag_file_with_worker_processes(run, sample_model_dir, tmp_path):
    outfile = tmp_path / "out.jsonl"
    result = run("tag-file", str(bundled("sample_unseen.jsonl")), str(outfile), "--model",
                 str(sample_model_dir), "--workers", "2", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in outfile.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"u00{i}" for i in range(1, 7)]


def test_eval_reports_ours_beside_the_baselines(run, sample_model_dir):
    result = run("eval", "--model", str(sample_model_dir), "--data",
                 str(bundled("sample_unseen.jsonl")), "--baseline-data",
                 str(bundled("sample_articles.jsonl")), "--json")
    assert result.exit_code == 0, result.output
    methods = json.loads(result.stdout)["methods"]
    assert set(methods) == {"hybrid", "tfidf_lr", "embedding_lr", "jieba_extract_tags"}
    ours = methods["hybrid"]
    assert {"accuracy_top1", "micro_f1", "macro_f1", "samples_f1", "p_at_1", "p_at_3",
            "per_category"} <= set(ours["categories"])
    assert {"p_at_5", "r_at_5", "f1_at_5"} <= set(ours["tags"])


def test_cv_runs_every_method_in_one_report(run, tmp_path):
    out = tmp_path / "cv.json"
    result = run("cv", "--data", str(bundled("sample_articles.jsonl")), "--taxonomy",
                 str(bundled("sample_taxonomy.json")), "--folds", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "tfidf_lr" in result.stdout and "jieba_extract_tags" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["articles"] == 104
    assert report["methods"]["hybrid"]["categories"]["accuracy_top1"] > 0.6


def test_wrong_taxonomy_exits_with_model_error(run, sample_model_dir, tmp_path):
    tax = tmp_path / "t.json"
    tax.write_text('["一", "二"]', encoding="utf-8")
    result = run("predict", "--model", str(sample_model_dir), "--taxonomy", str(tax),
                 input='{"id": "x", "title": "t", "content": "c"}')
    assert result.exit_code == EXIT_MODEL and "Retrain" in result.output


def test_train_writes_a_model_directory(run, tmp_path):
    out = tmp_path / "m"
    result = run("train", "--data", str(bundled("sample_articles.jsonl")), "--taxonomy",
                 str(bundled("sample_taxonomy.json")), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training"]["articles"] == 104
    assert (out / "manifest.json").exists() and (out / "neighbours.faiss").exists()
