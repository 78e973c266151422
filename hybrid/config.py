"""All settings in one place: defaults < config file (TOML) < environment < command-line flags.

`Config` is a typed model (a pydantic dataclass): every setting's type and range is checked
where the layers are merged, and an error names the layer (the file, the environment variable
or the flag) and the key, and exits 2. Adding a setting is one line: a field whose type says
what is allowed, most often one of the types below (`Count`, `Seconds`, `Fraction`, ...).
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass

from hybrid.errors import ConfigError
from hybrid.mongo.fields import check_field_name

ENV_PREFIX = "HYBRID_"
DEFAULT_CONFIG_FILE = "hybrid.toml"
DEFAULT = "default"
_SECRET = frozenset({"mongo_uri", "llm_base_url"})  # may hold a password: never shown


def _text(value: str) -> str:
    """No control characters: they are never meant, and they garble terminals and logs."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("contains a control character")
    return value


def _embedder(spec: str) -> str:
    if spec != "use-multilingual" and not re.fullmatch(r"sentence-transformers:\S.*", spec):
        raise ValueError("use 'use-multilingual' or 'sentence-transformers:<name or path>'")
    return spec


def _database(name: str) -> str:
    """MongoDB's rules for a database name."""
    if len(name.encode()) > 63 or set(name) & set('/\\. "$*<>:|?'):
        raise ValueError('at most 63 bytes, none of / \\ . " $ * < > : | ? or a space')
    return name


def _collection(name: str) -> str:
    """MongoDB's rules for a collection name."""
    if "$" in name or name.startswith("system."):
        raise ValueError("no '$', and not a system.* name")
    return name


def _origins(value: str) -> str:
    """CORS origins, comma-separated: each `*` or scheme://host[:port], as browsers send it."""
    for origin in filter(None, (o.strip() for o in _text(value).split(","))):
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"{origin!r} is not an origin: '*' or http(s)://host[:port], "
                             "with no path")
    return value


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return url


# the types of settings: a new setting usually takes one of these
Text = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_text)]
FieldName = Annotated[Text, AfterValidator(check_field_name)]  # a field of the source
# documents, as MongoDB reads its name (a dotted path; no `$`, nothing inside `hybrid`)
Count = Annotated[int, Field(ge=1)]  # 1 or more
Budget = Annotated[int, Field(ge=0)]  # 0 or more
Fraction = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(gt=0, le=86_400)]
Money = Annotated[float, Field(ge=0)]


_RULES = ConfigDict(strict=True, allow_inf_nan=False)  # a TOML string is no number, nor nan


@dataclass(frozen=True, config=ConfigDict(**_RULES, extra="forbid"))
class Config:
    # text and features
    embedder: Annotated[Text, AfterValidator(_embedder)] = "use-multilingual"
    embed_budget: Annotated[int, Field(ge=10, le=100_000)] = 400
    max_field_chars: Annotated[int, Field(ge=1_000)] = 1_000_000
    cache_dir: Text = str(Path.home() / ".cache" / "hybrid")
    workers: Annotated[int, Field(ge=1, le=1024)] = 1  # training processes
    # categories
    min_categories: Annotated[int, Field(ge=1, le=20)] = 1
    max_categories: Annotated[int, Field(ge=1, le=20)] = 3
    # tags
    n_tags: Annotated[int, Field(ge=1, le=50)] = 5
    tag_prefix_chars: Annotated[int, Field(ge=100)] = 3000
    user_dict: Text | None = None
    user_stopwords: Text | None = None
    tag_aliases: Text | None = None
    # article field names in the source documents
    id_field: FieldName = "id"
    title_field: FieldName = "title"
    description_field: FieldName = "description"
    content_field: FieldName = "content"
    date_field: FieldName = "date"  # publication date, when articles have one (growth, dead)
    # MongoDB
    mongo_uri: str | None = None  # checked by the store, which can say what is wrong unseen
    mongo_db: Annotated[Text, AfterValidator(_database)] = "hybrid"
    mongo_collection: Annotated[Text, AfterValidator(_collection)] = "articles"
    categories_field: FieldName = "categories"
    tags_field: FieldName = "tags"
    results_collection: Annotated[Text, AfterValidator(_collection)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 200
    max_failure_rate: Fraction = 0.05
    lease_seconds: Annotated[int, Field(ge=30, le=7 * 86_400)] = 600
    mongo_timeout: Seconds = 30.0  # seconds to select a server, connect, or wait for a reply
    mongo_retry_seconds: Annotated[float, Field(ge=0, le=86_400)] = 300.0  # transient errors
    low_confidence: Fraction = 0.5  # predictions below this count as low-confidence in reports
    # `hybrid taxonomy suggest`: when the category list should change
    suggest_confidence: Fraction = 0.9  # an unlabelled article below this fits no category
    suggest_min_articles: Count = 5  # a proposed category's least size (and 1% of articles)
    dead_min_articles: Count = 5  # a category with fewer articles is proposed for removal
    dead_months: Count = 24  # ... and one with none in this many months
    # scale-out: `--engine ray` (the optional `hybrid[ray]` extra); see docs/scale.md
    engine: Literal["local", "ray"] = "local"  # "local": a process pool; "ray": Ray workers
    ray_address: Text | None = None  # "auto" or HOST:PORT; None: a Ray instance on this machine
    partition_size: Count = 2000  # articles per Ray partition (a unit of retry and checkpoint)
    # optional LLM
    llm_mode: Literal["off", "fallback", "review-only"] = "off"
    llm_base_url: Annotated[Text, AfterValidator(_http_url)] | None = None
    llm_model: Text | None = None
    llm_timeout: Seconds = 60.0
    llm_concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    llm_threshold: Annotated[float, Field(ge=0)] = 0.5  # above 1: every article
    llm_max_calls: Budget = 1000
    llm_max_tokens: Budget = 2_000_000
    llm_price_in_per_1k: Money = 0.0
    llm_price_out_per_1k: Money = 0.0
    llm_max_output_tokens: Annotated[int, Field(ge=16, le=100_000)] = 256
    llm_article_tokens: Annotated[int, Field(ge=16, le=1_000_000)] = 800  # prompt's article cut
    llm_top_k: Annotated[int, Field(ge=0, le=50)] = 3  # classifier candidates passed as hints
    llm_few_shot: Annotated[int, Field(ge=0, le=20)] = 3  # nearest labelled articles as examples
    llm_retries: Annotated[int, Field(ge=0, le=20)] = 2  # after a timeout, 429, 5xx, bad JSON...
    llm_backoff: Annotated[float, Field(ge=0, le=600)] = 1.0  # first retry's wait; doubles
    llm_max_failures: Count = 5  # consecutive failed articles before the run stops calling
    # fallback without a passing `hybrid llm check` (as configured), or a teacher estimated
    # below the zero-shot model kept on: the report says so
    llm_unchecked: bool = False

    # `hybrid serve` (docs/serve.md); its API key is read from the environment only
    serve_host: Text = "127.0.0.1"
    serve_port: Annotated[int, Field(ge=0, le=65_535)] = 8000  # 0: a free port
    serve_workers: Annotated[int, Field(ge=1, le=1024)] = 1  # worker processes, a model each
    serve_suggest_access: Literal["open", "key"] = "open"  # "key": suggest needs the API key
    serve_max_body: Annotated[int, Field(ge=1_024, le=1_000_000_000)] = 8_000_000  # bytes; 413
    serve_max_batch: Annotated[int, Field(ge=1, le=10_000)] = 64  # per suggest-batch; 422
    serve_model_batch: Annotated[int, Field(ge=1, le=10_000)] = 32  # one worker's batch
    serve_batch_window: Annotated[float, Field(ge=0, le=1)] = 0.002  # seconds a free worker
    # waits for more articles while others are busy and articles queue up
    serve_max_queue: Annotated[int, Field(ge=1, le=1_000_000)] = 512  # waiting articles; 503
    serve_timeout: Seconds = 30.0  # seconds a request may take, its body's arrival included
    serve_llm_deadline: Seconds = 2.0  # seconds the LLM fallback may add to a suggestion
    serve_cors_origins: Annotated[str, Field(max_length=4096), AfterValidator(_origins)] = ""
    # origins CORS allows; empty: CORS off

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.min_categories > self.max_categories:
            raise ValueError(f"min_categories ({self.min_categories}) is above "
                             f"max_categories ({self.max_categories})")
        return self

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
        return self.layered(flags, lambda name: f"--{name.replace('_', '-')}")

    def layered(self, values: Mapping[str, Any], origin: Callable[[str], str]) -> Config:
        """This configuration with `values` on top (`None`: not given); `origin(name)` names
        the flag or layer a value came from, for the error."""
        given = {k: v for k, v in values.items() if v is not None}
        origins = {k: origin(k) for k in given}
        return _build({**_values(self), **_checked(given, origins)}, origins)


def _names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Config))


def _values(config: Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in _names()}


@cache
def _setting(name: str) -> TypeAdapter:
    """One setting's type and range, to check a layer's value before the layers merge."""
    return TypeAdapter(Config.__pydantic_fields__[name].rebuild_annotation(), config=_RULES)


def _checked(layer: Mapping[str, Any], origins: Mapping[str, str], strings: bool = False
             ) -> dict[str, Any]:
    """A layer's values, each of the right type and in range; `strings` (the environment)
    are parsed by the setting's type. Every bad key of the layer is named in one error."""
    out, problems = {}, []
    for name, value in layer.items():
        if name not in Config.__pydantic_fields__:
            problems.append(f"{origins[name]}: unknown setting {name!r}")
            continue
        try:
            out[name] = (_setting(name).validate_strings(value) if strings else
                         _setting(name).validate_python(value))
        except ValidationError as exc:
            problems.append(_explain(exc.errors()[0] | {"loc": (name,)}, layer, origins))
    if problems:
        raise ConfigError("; ".join(problems))
    return out


def _show(name: str, value: Any) -> str:
    if name in _SECRET:
        return "(hidden)"
    shown = repr(value)
    return shown if len(shown) <= 80 else f"{shown[:77]}..."


def _build(values: dict[str, Any], origins: Mapping[str, str]) -> Config:
    """The merged layers, whose values are already checked one by one; what is left to fail
    is a rule between settings, named with the layers of the settings it involves."""
    try:
        return Config(**values)
    except ValidationError as exc:
        raise ConfigError("; ".join(_explain(e, values, origins) for e in exc.errors())) from None


def _explain(error: Any, values: Mapping[str, Any], origins: Mapping[str, str]) -> str:
    reason = re.sub(r"^(Value error, |(Input|String) (?=should))", "", error["msg"])
    if error["loc"]:  # one setting
        name = str(error["loc"][0])
        return f"{origins.get(name, DEFAULT)}: {name} = {_show(name, values.get(name))}: {reason}"
    named = [n for n in _names() if re.search(rf"\b{n}\b", reason)]  # the settings that disagree
    return f"{reason}: {', '.join(f'{n} from {origins.get(n, DEFAULT)}' for n in named)}"


def _file_layer(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            values = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not a valid TOML file: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc}") from None
    return _checked(values, dict.fromkeys(values, str(file)))


def _env_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """`HYBRID_<NAME>` variables (and `MONGODB_URI`); an empty one unsets an optional
    setting."""
    raw = {name: env[f"{ENV_PREFIX}{name.upper()}"] for name in _names()
           if f"{ENV_PREFIX}{name.upper()}" in env}
    origins = {name: f"environment variable {ENV_PREFIX}{name.upper()}" for name in raw}
    if "MONGODB_URI" in env and "mongo_uri" not in raw:
        raw["mongo_uri"] = env["MONGODB_URI"]
        origins["mongo_uri"] = "environment variable MONGODB_URI"
    unset = {n for n, v in raw.items() if v == "" and Config.__pydantic_fields__[n].default is None}
    values = _checked({n: v for n, v in raw.items() if n not in unset}, origins, strings=True)
    return {**values, **dict.fromkeys(unset)}, origins


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Build the effective configuration; an explicit `path` must exist, the default may not."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    file = Path(path or env.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG_FILE))
    if file.exists():
        values = _file_layer(file)
        origins = dict.fromkeys(values, str(file))
    elif path is not None:
        raise ConfigError(f"config file not found: {file}")
    from_env, env_origins = _env_layer(env)
    return _build({**values, **from_env}, {**origins, **env_origins})
