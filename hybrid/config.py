"""All settings in one place: defaults < config file (TOML) < environment < command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "HYBRID_"
DEFAULT_CONFIG_FILE = "hybrid.toml"


@dataclass(frozen=True)
class Config:
    # text and features
    embedder: str = "use-multilingual"
    embed_budget: int = 400
    max_field_chars: int = 1_000_000
    cache_dir: str = str(Path.home() / ".cache" / "hybrid")
    workers: int = 1  # training processes (featurizing, inner cross-validation)
    # categories
    min_categories: int = 1
    max_categories: int = 3
    # tags
    n_tags: int = 5
    tag_prefix_chars: int = 3000
    user_dict: str | None = None
    user_stopwords: str | None = None
    tag_aliases: str | None = None
    # article field names in the source documents
    id_field: str = "id"
    title_field: str = "title"
    description_field: str = "description"
    content_field: str = "content"
    # MongoDB
    mongo_uri: str | None = None
    mongo_db: str = "hybrid"
    mongo_collection: str = "articles"
    categories_field: str = "categories"
    tags_field: str = "tags"
    results_collection: str | None = None
    batch_size: int = 200
    max_failure_rate: float = 0.05
    lease_seconds: int = 600
    mongo_timeout: float = 30.0  # seconds to select a server, connect, or wait for a reply
    mongo_retry_seconds: float = 300.0  # keep retrying a transient error this long (elections)
    low_confidence: float = 0.5  # predictions below this count as low-confidence in run reports
    # scale-out: `--engine ray` (the optional `hybrid[ray]` extra); see docs/scale.md
    engine: str = "local"  # "local": this process and a process pool; "ray": Ray workers
    ray_address: str | None = None  # "auto" or HOST:PORT; None: a Ray instance on this machine
    partition_size: int = 2000  # articles per Ray partition (a unit of retry and checkpoint)
    # optional LLM
    llm_mode: str = "off"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_timeout: float = 60.0
    llm_concurrency: int = 1
    llm_threshold: float = 0.5
    llm_max_calls: int = 1000
    llm_max_tokens: int = 2_000_000
    llm_price_in_per_1k: float = 0.0
    llm_price_out_per_1k: float = 0.0
    llm_max_output_tokens: int = 256
    llm_article_tokens: int = 800  # the article text in the prompt is cut to this many tokens
    llm_top_k: int = 3  # classifier candidates passed as hints
    llm_few_shot: int = 3  # nearest labelled articles shown as examples
    llm_retries: int = 2  # extra attempts after a timeout, 429, 5xx, invalid JSON or refusal
    llm_backoff: float = 1.0  # seconds before the first retry; doubles each time
    llm_max_failures: int = 5  # consecutive failed articles before the run stops calling
    # `hybrid serve` (docs/serve.md); the API key is read from the environment only
    serve_host: str = "127.0.0.1"
    serve_port: int = 8000
    serve_workers: int = 1  # model worker processes, each with the model loaded once
    serve_suggest_access: str = "open"  # "open", or "key": suggest needs the API key too
    serve_max_body: int = 8_000_000  # bytes of a request body (413 past it)
    serve_max_batch: int = 64  # articles in one /v1/suggest-batch request (422 past it)
    serve_model_batch: int = 32  # articles one worker predicts together, across requests
    serve_batch_window: float = 0.002  # seconds a free worker waits for more, while others are busy
    serve_max_queue: int = 512  # articles waiting for a worker before requests get 503
    serve_timeout: float = 30.0  # seconds a request may take, its body's arrival included
    serve_llm_deadline: float = 2.0  # seconds the LLM fallback may add to a suggestion
    serve_cors_origins: str = ""  # comma-separated origins allowed by CORS; empty: CORS off

    @property
    def llm_api_key(self) -> str | None:
        """Read from the environment only, so it never lands in a file or a log."""
        return os.environ.get("HYBRID_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")

    @property
    def api_key(self) -> str | None:
        """`hybrid serve`'s bearer key (feedback, admin; suggest with serve_suggest_access
        "key"), from the environment only, like the LLM's."""
        return os.environ.get("HYBRID_API_KEY") or None

    @property
    def model_key(self) -> str | None:
        """HMAC key for model manifests, from the environment only (never a file or a log):
        when set, models are signed on save and refused on load without a valid signature."""
        return os.environ.get("HYBRID_MODEL_KEY") or None

    def with_overrides(self, **flags: Any) -> Config:
        """Apply command-line flags; `None` means the flag was not given."""
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = set(given) - _field_names()
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **given)


def _field_names() -> set[str]:
    return {f.name for f in fields(Config)}


def _coerce(name: str, raw: str) -> Any:
    kind = {f.name: f.type for f in fields(Config)}[name]
    if "int" in kind and "float" not in kind:
        return int(raw)
    if "float" in kind:
        return float(raw)
    return raw


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Build the effective configuration; an explicit `path` must exist, the default may not."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    file = Path(path or env.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG_FILE))
    if file.exists():
        with file.open("rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - _field_names()
        if unknown:
            raise ValueError(f"{file}: unknown setting(s): {', '.join(sorted(unknown))}")
        values.update(data)
    elif path is not None:
        raise FileNotFoundError(f"config file not found: {file}")
    for name in _field_names():
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in env:
            values[name] = _coerce(name, env[key])
    if "MONGODB_URI" in env and "mongo_uri" not in values:
        values["mongo_uri"] = env["MONGODB_URI"]
    return Config(**values)
