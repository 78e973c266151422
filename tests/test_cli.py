"""hybrid.cli: every command has help; global options; errors become exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid import data
from hybrid.cli import main
from hybrid.errors import Exit

COMMANDS = ["train", "predict", "tag-file", "eval", "cv", "demo"]

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
    assert result.exit_code == Exit.USAGE
    assert "'b'" in result.output and "content" in result.output


def test_wrong_taxonomy_exits_with_model_error(run, sample_model_dir, tmp_path):
    tax = tmp_path / "t.json"
    tax.write_text('["一", "二"]', encoding="utf-8")
    result = run("predict", "--model", str(sample_model_dir), "--taxonomy", str(tax),
                 input='{"id": "x", "title": "t", "content": "c"}')
    assert result.exit_code == Exit.MODEL and "Retrain" in result.output


def test_train_writes_a_model_directory(run, tmp_path):
    out = tmp_path / "m"
    result = run("train", "--data", str(data.path("sample_articles.jsonl")), "--taxonomy",
                 str(data.path("sample_taxonomy.json")), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training"]["articles"] == 104
    assert (out / "manifest.json").exists() and (out / "neighbours.faiss").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_work_before_and_after_the_command_name(where, cache_dir, tmp_path,
                                                               sample_model_dir):
    config = tmp_path / "hybrid.toml"
    config.write_text(f'cache_dir = "{tmp_path / "cache"}"\n', encoding="utf-8")
    options = ["--quiet", "--verbose", "--config", str(config), "--cache-dir", str(cache_dir),
               "--embedder", "use-multilingual"]
    command = ["predict", "--model", str(sample_model_dir)]
    args = [*options, *command] if where == "before" else [*command, *options]
    result = CliRunner().invoke(main, args, input='{"id": "g", "title": "Redis 持久化"}')
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"categories", "tags"}
    assert not (tmp_path / "cache").exists()  # --cache-dir beat the file


def test_global_options_work_on_subcommands_of_groups(tmp_path):
    result = CliRunner().invoke(main, ["taxonomy", "diff", str(data.path("sample_taxonomy.json")),
                                       str(data.path("sample_taxonomy_v2.json")), "--quiet",
                                       "--json"], env={"MONGODB_URI": ""})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["add"] == ["软件测试"]


def test_every_exit_code_is_documented_in_the_help_and_the_docs():
    """The exit-code table of docs/mongo.md, which the README links to."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "mongo.md").read_text(encoding="utf-8")
    table = page.partition("## Exit codes")[2].split("\n## ")[0]
    documented = {int(n) for row in re.findall(r"^\| ([\d, ]+) \|", table, re.M)
                  for n in row.split(",")}
    top = CliRunner().invoke(main, ["--help"]).output
    for code in Exit:
        assert code.value in documented, code
        assert f"{code.value} " in top, code


def test_unreadable_input_is_a_usage_error(run, sample_model_dir, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = run("predict", str(folder), "--model", str(sample_model_dir))
    assert result.exit_code == Exit.USAGE and result.output.startswith("error: ")
