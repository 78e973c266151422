"""hybrid.labels.impact and `hybrid taxonomy diff`: what a list change touches."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hybrid import data
from hybrid.cli import main


def test_taxonomy_diff_command_counts_affected_articles(tmp_path):
    result = CliRunner().invoke(main, [
        "taxonomy", "diff", str(data.path("sample_taxonomy.json")),
        str(data.path("sample_taxonomy_v2.json")),
        "--data", str(data.path("sample_articles.jsonl")),
        "--json"], env={"MONGODB_URI": ""})
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["rename"] == {"人工智能": "AI与机器学习"}
    assert out["merge"] == {"前端开发": "客户端开发", "移动开发": "客户端开发"}
    assert out["remove"] == ["安全最佳实践"] and out["add"] == ["软件测试"]
    assert out["impact"]["安全最佳实践"] == {"articles": 16}
