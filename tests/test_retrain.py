"""Acceptance: from a trained model, rename one category, merge two, add one with only a
description, remove one (hybrid/data/sample_taxonomy_v2.json), retrain, and check that no
output (predict, run, report) holds an old name, that renamed labels carry over, that the
new category is predicted before it has labelled examples, and that nothing is re-embedded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import dump, env, records
from helpers import hybrid as cli

from hybrid import data
from hybrid.evaluation.report import HEADINGS
from hybrid.learn.artifacts import read_manifest
from hybrid.learn.zero_shot import category_texts
from hybrid.mongo.store import Store
from hybrid.taxonomy import load_taxonomy

OLD_NAMES = ["人工智能", "前端开发", "移动开发", "安全最佳实践"]  # renamed, merged, removed


NEW = "软件测试"


TESTING = [
    ("用 pytest 给 Python 项目写单元测试",
     "pytest 的 fixture、参数化测试与 Mock，用 coverage 统计测试覆盖率，把单元测试接入 CI。"),
    ("前端单元测试实践：Jest 与 Testing Library",
     "用 Jest 编写单元测试，Mock 接口请求，快照测试，测试覆盖率报告，测试驱动开发 TDD。"),
    ("JUnit 5 与 Mockito：Java 服务的测试金字塔",
     "单元测试、集成测试与端到端测试的比例；参数化测试，Mockito 打桩与验证，覆盖率门禁。"),
]


@pytest.fixture(scope="module")
def retrained(tmp_path_factory, sample_model_dir, cache_dir) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("models") / "v2"
    result = cli("retrain", "--taxonomy", str(data.path("sample_taxonomy_v2.json")),
                 "--model", str(sample_model_dir),
                 "--data", str(data.path("sample_articles.jsonl")),
                 "--out", str(out), "--json", cache_dir=cache_dir)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_retrain_moves_labels_and_reuses_the_embedding_cache(retrained, sample_model_dir):
    out, report = retrained
    counts = read_manifest(out)["training"]["label_counts"]
    old = read_manifest(sample_model_dir)["training"]["label_counts"]
    assert counts["AI与机器学习"] == old["人工智能"]  # renamed labels carry over
    assert counts["客户端开发"] == 30  # 前端开发 16 + 移动开发 15, one article had both
    assert counts[NEW] == 0 and not set(OLD_NAMES) & set(counts)
    # no article or word is embedded again: only the texts of categories the new list
    # describes differently (its zero-shot prior), and the new category's prototype
    old_texts = {t for group in category_texts(load_taxonomy(data.path("sample_taxonomy.json")))
                 for t in group}
    new_texts = {t for group in category_texts(
        load_taxonomy(data.path("sample_taxonomy_v2.json"))) for t in group} - old_texts
    assert report["cache"]["misses"] <= len(new_texts) + 1
    rows = {r["from"]: r for r in report["metrics"]}
    assert rows["前端开发, 移动开发"]["category"] == "客户端开发"
    assert rows["安全最佳实践"]["new_f1"] is None and rows["new"]["category"] == NEW
    print(f"retrain {report['seconds']}s, old model {report['old_training_seconds']}")


def test_predict_outputs_only_new_names_and_finds_the_new_category(retrained, cache_dir):
    out, _ = retrained
    for title, content in TESTING:
        article = json.dumps({"id": "t", "title": title, "content": content}, ensure_ascii=False)
        result = cli("predict", "--model", str(out), "--explain", input=article,
                     cache_dir=cache_dir)
        assert result.exit_code == 0, result.output
        assert not [n for n in OLD_NAMES if n in result.stdout]
        assert NEW in json.loads(result.stdout)["categories"], title
    database = json.dumps({"id": "d", "title": "MySQL 慢查询排查",
                           "content": "开启慢查询日志，用 explain 分析执行计划，补上联合索引。"},
                          ensure_ascii=False)
    result = cli("predict", "--model", str(out), input=database, cache_dir=cache_dir)
    categories = json.loads(result.stdout)["categories"]
    assert categories[0] == "数据库" and NEW not in categories


def test_report_shows_no_old_name(retrained, cache_dir, tmp_path):
    out, _ = retrained
    page = tmp_path / "report.html"
    result = cli("report", "--model", str(out), "--data", str(data.path("sample_articles.jsonl")),
                 "--folds", "2", "--out", str(page), cache_dir=cache_dir)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert len(re.findall(r"data:image/png;base64,", html)) == len(HEADINGS)
    assert "AI与机器学习" in html and "客户端开发" in html
    assert not [n for n in OLD_NAMES if n in html]


def test_run_retag_affected_reaches_only_touched_articles(retrained, sample_model_dir,
                                                          mongo_config, cache_dir):
    out, _ = retrained
    environ = env(mongo_config)
    with Store(mongo_config) as store:
        docs = records(30)
        store.import_records(docs)
        assert cli("run", "--model", str(sample_model_dir), cache_dir=cache_dir,
                   environ=environ).exit_code == 0
        store.import_records([{"_id": "m1", "title": "手写", "content": "人工标注的一篇",
                               "categories": ["人工智能"]},
                              {"_id": "m2", "title": "手写", "content": "另一篇",
                               "categories": ["安全最佳实践"]}], manual=True)
        before = dump(store)
        touched = {k for k, d in before.items() if set(d["categories"]) & set(OLD_NAMES)}
        result = cli("run", "--model", str(out), "--retag", "affected", "--json",
                     cache_dir=cache_dir, environ=environ)
        assert result.exit_code == 0, result.output
        counts = json.loads(result.stdout.splitlines()[-1])["counts"]
        after = dump(store)
    assert counts["tagged"] == len(touched) - 1  # m1 keeps its (renamed) manual label
    assert counts["unchanged"] == len(docs) - len(touched) + 2
    for key, doc in after.items():
        assert not set(doc["categories"]) & set(OLD_NAMES), doc
        if key not in touched:
            assert doc == before[key]
    assert after["m1"]["categories"] == ["AI与机器学习"]
    assert after["m1"]["hybrid"]["source"] == "manual"
    assert after["m2"]["hybrid"]["source"] == "model" and after["m2"]["categories"]
