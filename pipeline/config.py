"""Configuration: ``configs/*.toml`` read with tomllib and validated into typed sections.

Each section is a pydantic dataclass (strict types, ``extra="forbid"``), so every key's type,
range and default is declared once, here; ``configs/default.toml`` documents the same defaults
(a test compares them). An unknown key, a value of the wrong type or out of range raises
:class:`~pipeline.errors.ConfigError` naming ``section.key``. The sections stay dataclasses, so
``dataclasses.replace``/``asdict`` keep working; add a field there and document it in default.toml.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from .errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent
# configs/, models/ and data/: beside the package in a checkout (and an editable install); inside
# it, as _bundled/, in an installed wheel (see setup.py)
REPO_ROOT = PACKAGE_ROOT / "_bundled" if (PACKAGE_ROOT / "_bundled").is_dir() else PACKAGE_ROOT.parent
CONFIG_DIR = REPO_ROOT / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
CATEGORIES_FILE = CONFIG_DIR / "categories.toml"
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MODEL = MODELS_DIR / "category_classifier.skops"


_STRICT = ConfigDict(extra="forbid", strict=True)

# Bounded types: a value outside its range is refused when the config is loaded, before any work.
Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonEmpty = Annotated[str, Field(min_length=1)]


# Series columns (a stock standfirst, not about the article) and kickers (a label, not a topic):
# the parse defaults, and the tagger's (pipeline.tag_features) when it is given none.
DEFAULT_SERIES: tuple[str, ...] = ("London Eye", "West Country Chronicle", "Recovery Watch", "The Integrator")
DEFAULT_KICKERS: tuple[str, ...] = ("Exclusive", "Revealed")


@dataclass(config=_STRICT)
class ParseConfig:
    """Options of the parse stage."""

    headline_column: NonEmpty = "headline"
    standfirst_column: str = "standfirst"
    series: list[str] = field(default_factory=lambda: list(DEFAULT_SERIES))
    kickers: list[str] = field(default_factory=lambda: list(DEFAULT_KICKERS))


@dataclass(config=_STRICT)
class CleanConfig:
    """Options of the clean stage (spaCy normalisation)."""

    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    extra_stop_words: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    normalise_file: str = ""
    repair: bool = True
    min_token_length: Annotated[int, Field(ge=1, le=100)] = 2
    blurb_min_headlines: Annotated[int, Field(ge=2)] = 2
    parallel_threshold: NonNegative = 20_000
    cache_size: NonNegative = 500000


@dataclass(config=_STRICT)
class VectoriseConfig:
    """Options of the TF-IDF stage."""

    ngram_min: Annotated[int, Field(ge=1, le=10)] = 1
    ngram_max: Annotated[int, Field(ge=1, le=10)] = 1
    min_df: Annotated[float, Field(ge=0.0)] = 2.0
    max_df: Annotated[float, Field(gt=0.0)] = 0.9
    sublinear_tf: bool = True
    headline_weight: Annotated[float, Field(ge=0.0, le=100.0)] = 2.0


@dataclass(config=_STRICT)
class ClusterConfig:
    """Options of the cluster stage."""

    method: Literal["kmeans", "agglomerative", "hdbscan"] = "kmeans"
    n_clusters: Union[Literal["auto"], Positive] = "auto"
    min_clusters: Annotated[int, Field(ge=2, le=10_000)] = 2
    max_clusters: Annotated[int, Field(ge=2, le=10_000)] = 30
    random_state: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0  # numpy's seed range
    lsa_components: Annotated[int, Field(ge=2, le=10_000)] = 100
    n_init: Annotated[int, Field(ge=1, le=1000)] = 10
    minibatch_threshold: Positive = 20000
    silhouette_sample: Annotated[int, Field(ge=10)] = 5000
    n_terms: Annotated[int, Field(ge=1, le=100)] = 8
    min_cluster_size: Positive = 3
    exact_max: Annotated[int, Field(ge=2)] = 20000
    outlier_similarity: Fraction = 0.3
    refine: Literal["none", "nb"] = "nb"
    refine_alpha: Annotated[float, Field(gt=0.0, le=1000.0)] = 0.3
    refine_max_iter: Annotated[int, Field(ge=1, le=1000)] = 20


@dataclass(config=_STRICT)
class TagConfig:
    """Options of the tag stage."""

    # below this confidence an article is flagged uncertain; None: the model's own threshold,
    # chosen when it was calibrated on held-out text (its card's min_confidence)
    min_confidence: Fraction | None = None
    model: str = ""
    # with run.jobs > 1, share the tag stage's batches with forked processes from this many articles
    parallel_threshold: NonNegative = 2000


@dataclass(config=_STRICT)
class CompareConfig:
    """How runs are compared (``hsj-pipeline compare``, ``run --previous``)."""

    min_similarity: Fraction = 0.5
    size_tolerance: Annotated[float, Field(ge=0.0)] = 0.1


@dataclass(config=_STRICT)
class RunConfig:
    """Options of the whole job."""

    jobs: Annotated[int, Field(ge=0, le=1024)] = 0  # 0 = all cores
    backend: Literal["local", "dask"] = "local"
    scheduler: str = ""


SECTIONS: dict[str, type] = {"parse": ParseConfig, "clean": CleanConfig, "vectorise": VectoriseConfig,
                             "cluster": ClusterConfig, "tag": TagConfig, "compare": CompareConfig,
                             "run": RunConfig}


@dataclass(config=_STRICT)
class Config:
    """The whole resolved configuration, one attribute per section."""

    parse: ParseConfig = field(default_factory=ParseConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    vectorise: VectoriseConfig = field(default_factory=VectoriseConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tag: TagConfig = field(default_factory=TagConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as resolved, for the run manifest."""
        return dataclasses.asdict(self)


# keys of earlier versions, and what they are called now
RENAMED = {"run.overlap_min_articles": "tag.parallel_threshold"}


def _config_error(exc: ValidationError, cls: type, name: str) -> ConfigError:
    """The first field pydantic refused, as one line naming ``section.key``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = first["loc"]
    key = f"{name}.{loc[0]}" if loc else name
    if len(loc) > 1 and isinstance(loc[1], int):
        key += f"[{loc[1]}]"
    if first["type"] == "unexpected_keyword_argument":
        if key in RENAMED:
            return ConfigError(f"was renamed {RENAMED[key]}", key=key)
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        return ConfigError(f"unknown key (known: {known})", key=key)
    same = [e for e in errors if e["loc"][:1] == loc[:1]]  # a union reports one error per option
    parts = list(dict.fromkeys(str(e["msg"]).removeprefix("Input should be ") for e in same))
    return ConfigError(f"should be {' or '.join(parts)}, got {first.get('input')!r}", key=key)


def _section(cls: type, values: dict[str, Any], name: str) -> Any:
    try:
        return cls(**values)
    except ValidationError as exc:
        raise _config_error(exc, cls, name) from None


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`."""
    sections = {}
    for name, values in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown section (known: {', '.join(sorted(SECTIONS))})", key=name)
        if not isinstance(values, dict):
            raise ConfigError("expected a table of keys", key=name)
        sections[name] = _section(SECTIONS[name], values, name)
    config = Config(**sections)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-field checks that one key's type and range cannot express."""
    c = config
    if c.vectorise.ngram_max < c.vectorise.ngram_min:
        raise ConfigError(f"must be at least vectorise.ngram_min ({c.vectorise.ngram_min})",
                          key="vectorise.ngram_max")
    if c.cluster.max_clusters < c.cluster.min_clusters:
        raise ConfigError(f"must be at least cluster.min_clusters ({c.cluster.min_clusters})",
                          key="cluster.max_clusters")


def _parse_override(item: str) -> tuple[list[str], Any]:
    """``section.key=value`` with value read as TOML (so 5, 0.3, true, "x", [1, 2] all work)."""
    if "=" not in item:
        raise ConfigError("expected section.key=value", key=item)
    dotted, raw = item.split("=", 1)
    path = dotted.strip().split(".")
    if len(path) != 2 or not all(path):
        raise ConfigError("expected section.key=value", key=dotted.strip())
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words are strings: --set cluster.method=kmeans
    return path, value


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML config (default: ``configs/default.toml`` if present), apply ``--set`` overrides."""
    data: dict[str, Any] = {}
    source = Path(path) if path is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if source is not None:
        if not source.is_file():
            raise ConfigError("config file not found", key=str(source))
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML: {exc}", key=str(source)) from None
    for item in overrides or []:
        (section, key), value = _parse_override(item)
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError("expected a table of keys", key=section)
        data[section][key] = value
    return config_from_dict(data)


def config_json(config: Config) -> str:
    """Canonical JSON of a config (sorted keys), for hashing and manifests."""
    return json.dumps(config.to_dict(), sort_keys=True, ensure_ascii=False)
