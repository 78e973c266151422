"""hybrid.config: defaults < TOML file < environment < command-line flags."""

from __future__ import annotations

import math
import re
from dataclasses import fields, replace

import pytest
from click.testing import CliRunner
from helpers import hybrid

from hybrid import data
from hybrid.cli import main
from hybrid.config import Config, load_config
from hybrid.errors import ConfigError, Exit


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
    with pytest.raises(ConfigError, match=r"missing\.toml"):
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


NO_FILE = {"HYBRID_CONFIG": "/nonexistent/hybrid.toml"}


@pytest.mark.parametrize("toml, key", [
    ('workers = "two"', "workers"), ('batch_size = "big"', "batch_size"),
    ("embed_budget = [1, 2]", "embed_budget"), ("cache_dir = 5", "cache_dir"),
    ("workers = true", "workers"), ("max_failure_rate = 5", "max_failure_rate"),
    ("max_failure_rate = nan", "max_failure_rate"), ("llm_timeout = inf", "llm_timeout"),
    ('engine = "spark"', "engine"), ('llm_mode = "always"', "llm_mode"),
    ('embedder = "bert"', "embedder"), ('mongo_db = "my.db"', "mongo_db"),
    ('mongo_collection = "a$b"', "mongo_collection"), ('content_field = ""', "content_field"),
    ('user_dict = "dict\\u001b[31m.txt"', "user_dict"), ("[llm]\nmode = 1", "llm"),
    ("min_categories = 4", "min_categories"),
])
def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path, toml, key):
    file = tmp_path / "hybrid.toml"
    file.write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(file, env={})
    assert str(file) in caught.value.message and key in caught.value.message


@pytest.mark.parametrize("variable, value", [
    ("HYBRID_WORKERS", "0"), ("HYBRID_WORKERS", "abc"), ("HYBRID_BATCH_SIZE", "-5"),
    ("HYBRID_BATCH_SIZE", "0"), ("HYBRID_MAX_FAILURE_RATE", "nan"),
    ("HYBRID_LEASE_SECONDS", "0"), ("HYBRID_LEASE_SECONDS", "-100"),
    ("HYBRID_MONGO_TIMEOUT", "0"), ("HYBRID_LLM_TIMEOUT", "nan"), ("HYBRID_EMBED_BUDGET", "-1"),
    ("HYBRID_LLM_THRESHOLD", "-0.1"), ("HYBRID_LLM_BASE_URL", "127.0.0.1:8000"),
    ("HYBRID_CACHE_DIR", ""), ("HYBRID_MIN_CATEGORIES", "4"),
    ("HYBRID_SERVE_PORT", "70000"), ("HYBRID_SERVE_PORT", "http"), ("HYBRID_SERVE_HOST", ""),
    ("HYBRID_SERVE_WORKERS", "0"), ("HYBRID_SERVE_SUGGEST_ACCESS", "keys"),
    ("HYBRID_SERVE_BATCH_WINDOW", "5"), ("HYBRID_SERVE_MAX_BODY", "10"),
    ("HYBRID_SERVE_CORS_ORIGINS", "https://cms.example/admin"),
    ("HYBRID_SERVE_CORS_ORIGINS", "cms.example"),
])
def test_a_bad_environment_variable_is_named(variable, value):
    with pytest.raises(ConfigError, match=f"environment variable {variable}"):
        load_config(env={**NO_FILE, variable: value})


def test_serve_settings_are_typed_and_its_api_key_is_no_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRID_API_KEY", "s3cret")
    config = load_config(env={**NO_FILE, "HYBRID_SERVE_PORT": "0",
                              "HYBRID_SERVE_SUGGEST_ACCESS": "key", "HYBRID_SERVE_CORS_ORIGINS":
                              "https://cms.example, http://127.0.0.1:8080"})
    assert (config.serve_port, config.serve_suggest_access) == (0, "key")
    assert config.api_key == "s3cret"  # from the environment only, like the LLM's key
    file = tmp_path / "hybrid.toml"
    file.write_text('api_key = "s3cret"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'api_key'") as caught:
        load_config(file, env={})
    assert "s3cret" not in caught.value.message


def test_environment_values_are_parsed_by_type_and_empty_unsets_an_optional_one():
    config = load_config(env={**NO_FILE, "HYBRID_WORKERS": "3", "HYBRID_LLM_TIMEOUT": "2.5",
                              "HYBRID_ENGINE": "ray", "HYBRID_LLM_BASE_URL": "",
                              "MONGODB_URI": ""})
    assert (config.workers, config.llm_timeout, config.engine) == (3, 2.5, "ray")
    assert config.llm_base_url is None and config.mongo_uri is None


def test_a_broken_or_unreadable_file_is_named(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("workers = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{broken}: not a valid TOML file")):
        load_config(broken, env={})
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        load_config(env={"HYBRID_CONFIG": str(tmp_path)})  # a folder
    gbk = tmp_path / "gbk.toml"
    gbk.write_bytes('mongo_db = "数据"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match=re.escape(str(gbk))):
        load_config(gbk, env={})


def test_flags_are_checked_and_named():
    with pytest.raises(ConfigError, match="--llm-threshold: llm_threshold = nan"):
        Config().with_overrides(llm_threshold=math.nan)
    with pytest.raises(ConfigError, match="--workers: workers = 0"):
        Config().with_overrides(workers=0)
    with pytest.raises(ConfigError, match="min_categories from --min-categories"):
        Config().with_overrides(min_categories=3, max_categories=2)
    assert Config().with_overrides(min_categories=3, max_categories=3).min_categories == 3


def test_every_numeric_setting_has_a_range_and_refuses_nan_and_infinity():
    for f in fields(Config):
        default = getattr(Config(), f.name)
        if not isinstance(default, int | float):
            continue
        for bad in (-1, math.nan, math.inf, -math.inf):
            with pytest.raises(ValueError, match=f.name):
                Config(**{f.name: bad})


def test_a_config_built_in_code_is_checked_too(config):
    with pytest.raises(ValueError, match="batch_size"):
        replace(config, batch_size=0)
    with pytest.raises(ValueError, match="cache_dir"):
        Config(cache_dir=5)
    with pytest.raises(ValueError, match="nonsense"):
        Config(nonsense=1)


def test_secrets_in_a_bad_value_are_not_shown():
    with pytest.raises(ConfigError) as caught:
        load_config(env={**NO_FILE, "HYBRID_LLM_BASE_URL": "ftp://user:s3cret@host/"})
    assert "s3cret" not in caught.value.message and "HYBRID_LLM_BASE_URL" in caught.value.message


def train_with(tmp_path, *flags: str, **environ: str):
    return hybrid(*flags, "train", "--data", str(data.path("sample_articles.jsonl")),
                  "--taxonomy", str(data.path("sample_taxonomy.json")), "--out",
                  str(tmp_path / "model"), environ={"MONGODB_URI": "", **NO_FILE, **environ})


@pytest.mark.parametrize("environ, named", [
    ({"HYBRID_WORKERS": "abc"}, "HYBRID_WORKERS"), ({"HYBRID_WORKERS": "0"}, "HYBRID_WORKERS"),
    ({"HYBRID_BATCH_SIZE": "0"}, "HYBRID_BATCH_SIZE"),
    ({"HYBRID_MAX_FAILURE_RATE": "nan"}, "HYBRID_MAX_FAILURE_RATE"),
])
def test_the_command_line_exits_2_naming_the_variable(tmp_path, environ, named):
    result = train_with(tmp_path, **environ)
    assert result.exit_code == Exit.USAGE, result.output
    assert named in result.output and "Traceback" not in result.output
    assert not (tmp_path / "model").exists()


def test_the_command_line_exits_2_naming_the_file_or_the_flag(tmp_path):
    broken = tmp_path / "hybrid.toml"
    broken.write_text('workers = "two"\n', encoding="utf-8")
    result = train_with(tmp_path, "--config", str(broken))
    assert result.exit_code == Exit.USAGE and str(broken) in result.output
    assert "workers" in result.output
    result = hybrid("run", "--model", str(tmp_path), "--llm-threshold", "nan",
                    environ={"MONGODB_URI": "mongodb://127.0.0.1:9/", **NO_FILE})
    assert result.exit_code == Exit.USAGE and "--llm-threshold" in result.output
    result = hybrid("run", "--model", str(tmp_path), "--db", "a b",
                    environ={"MONGODB_URI": "mongodb://127.0.0.1:9/", **NO_FILE})
    assert result.exit_code == Exit.USAGE and "--db: mongo_db = 'a b'" in result.output


def test_a_bad_value_is_an_error_even_where_a_higher_layer_overrides_it(tmp_path):
    file = tmp_path / "hybrid.toml"
    file.write_text("cache_dir = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cache_dir = 5"):
        load_config(file, env={"HYBRID_CACHE_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="HYBRID_WORKERS"):
        load_config(env={**NO_FILE, "HYBRID_WORKERS": "0"}).with_overrides(workers=2)
