"""hybrid.config: defaults < TOML file < environment < command-line flags."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from helpers import hybrid

from hybrid.cli import main
from hybrid.config import Config, load_config


def test_each_layer_overrides_the_one_below(tmp_path):
    toml = tmp_path / "hybrid.toml"
    toml.write_text('n_tags = 7\nembed_budget = 300\nmongo_db = "from_file"\n', encoding="utf-8")
    env = {"HYBRID_EMBED_BUDGET": "200", "HYBRID_LLM_THRESHOLD": "0.25"}
    config = load_config(toml, env=env)
    assert config.max_categories == Config().max_categories  # default
    assert config.n_tags == 7  # file
    assert config.embed_budget == 200 and config.llm_threshold == 0.25  # environment, typed
    assert config.mongo_db == "from_file"
    flagged = config.with_overrides(embed_budget=100, mongo_db=None)
    assert flagged.embed_budget == 100  # flag
    assert flagged.mongo_db == "from_file"  # a flag not given changes nothing


def test_the_file_comes_from_the_flag_the_environment_or_the_working_directory(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hybrid.toml").write_text("n_tags = 4\n", encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text("n_tags = 6\n", encoding="utf-8")
    assert load_config(env={}).n_tags == 4
    assert load_config(env={"HYBRID_CONFIG": str(other)}).n_tags == 6
    assert load_config(other, env={}).n_tags == 6


def test_mongodb_uri_is_read_unless_a_setting_names_one():
    assert load_config(env={"MONGODB_URI": "mongodb://a/", "HYBRID_CONFIG": "/nonexistent"}
                       ).mongo_uri == "mongodb://a/"
    assert load_config(env={"MONGODB_URI": "mongodb://a/", "HYBRID_MONGO_URI": "mongodb://b/",
                            "HYBRID_CONFIG": "/nonexistent"}).mongo_uri == "mongodb://b/"


def test_unknown_settings_and_missing_files_are_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("n_tag = 4\n", encoding="utf-8")
    with pytest.raises(ValueError, match="n_tag"):
        load_config(bad, env={})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ValueError, match="nonsense"):
        Config().with_overrides(nonsense=1)


def test_the_command_line_applies_the_same_layers(tmp_path, sample_model_dir):
    """Where `hybrid predict` puts its embedding cache shows which layer won."""
    caches = {name: tmp_path / name for name in ("file", "env", "flag")}
    toml = tmp_path / "hybrid.toml"
    toml.write_text(f'cache_dir = "{caches["file"]}"\n', encoding="utf-8")
    article = '{"id": "x", "title": "Redis 持久化", "content": "RDB 与 AOF 的取舍"}'

    def predict(*flags: str, **environ: str) -> None:
        result = CliRunner().invoke(main, ["predict", "--model", str(sample_model_dir),
                                           "--config", str(toml), *flags], input=article,
                                    env={"MONGODB_URI": "", **environ})
        assert result.exit_code == 0, result.output

    predict()
    assert (caches["file"] / "embeddings.sqlite").exists()
    predict(HYBRID_CACHE_DIR=str(caches["env"]))
    assert (caches["env"] / "embeddings.sqlite").exists()
    predict("--cache-dir", str(caches["flag"]), HYBRID_CACHE_DIR=str(caches["env"]))
    assert (caches["flag"] / "embeddings.sqlite").exists()


def test_a_bad_config_file_is_a_usage_error(tmp_path, sample_model_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text("n_tag = 2\n", encoding="utf-8")
    result = hybrid("predict", "--model", str(sample_model_dir), "--config", str(bad),
                    input='{"id": "x", "title": "t"}')
    assert result.exit_code == 2 and "n_tag" in result.output
