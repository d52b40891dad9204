"""Configuration: ``configs/*.toml`` read with tomllib and validated into typed dataclasses.

Every key has a default here and is documented in ``configs/default.toml``. An unknown key or a
value of the wrong type raises :class:`~pipeline.errors.ConfigError` naming ``section.key``.
Each stage owns one section dataclass; add a field there and document it in default.toml.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class ParseConfig:
    """Options of the parse stage."""

    headline_column: str = "headline"
    standfirst_column: str = "standfirst"
    series: list[str] = field(default_factory=lambda: [
        "London Eye", "West Country Chronicle", "Recovery Watch", "The Integrator"])
    kickers: list[str] = field(default_factory=lambda: ["Exclusive", "Revealed"])


@dataclass
class CleanConfig:
    """Options of the clean stage (spaCy normalisation)."""

    batch_size: int = 1000
    extra_stop_words: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    normalise_file: str = ""
    repair: bool = True
    min_token_length: int = 2
    blurb_min_headlines: int = 2
    parallel_threshold: int = 20_000
    cache_size: int = 500000


@dataclass
class VectoriseConfig:
    """Options of the TF-IDF stage."""

    ngram_min: int = 1
    ngram_max: int = 1
    min_df: float = 2
    max_df: float = 0.9
    sublinear_tf: bool = True
    headline_weight: float = 2.0


@dataclass
class ClusterConfig:
    """Options of the cluster stage."""

    method: str = "kmeans"
    n_clusters: int | str = "auto"
    min_clusters: int = 2
    max_clusters: int = 30
    random_state: int = 0
    lsa_components: int = 100
    n_init: int = 10
    minibatch_threshold: int = 20000
    silhouette_sample: int = 5000
    n_terms: int = 8
    min_cluster_size: int = 3
    exact_max: int = 20000
    outlier_similarity: float = 0.3
    refine: str = "nb"
    refine_alpha: float = 0.3
    refine_max_iter: int = 20


@dataclass
class TagConfig:
    """Options of the tag stage."""

    # below this confidence an article is flagged uncertain; None: the model's own threshold,
    # chosen when it was calibrated on held-out text (its card's min_confidence)
    min_confidence: float | None = None
    model: str = ""


@dataclass
class CompareConfig:
    """How runs are compared (``hsj-pipeline compare``, ``run --previous``)."""

    min_similarity: float = 0.5
    size_tolerance: float = 0.1


@dataclass
class RunConfig:
    """Options of the whole job."""

    jobs: int = 0
    backend: str = "local"
    scheduler: str = ""
    # with jobs > 1, tag in a forked process alongside vectorise+cluster from this many articles
    overlap_min_articles: int = 2000


@dataclass
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


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return ``value`` if it fits ``annotation`` (ints are accepted for floats), else raise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"expected {_describe(annotation)}, got {value!r}", key=key)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {value!r}", key=key)
        return [_check_type(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if isinstance(value, float) else value
        raise ConfigError(f"expected a number, got {value!r}", key=key)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"expected an integer, got {value!r}", key=key)
    if annotation in (str, bool):
        if isinstance(value, annotation):
            return value
        raise ConfigError(f"expected {annotation.__name__}, got {value!r}", key=key)
    return value


def _describe(annotation: Any) -> str:
    args = typing.get_args(annotation)
    return " or ".join(getattr(a, "__name__", str(a)) for a in args) if args else str(annotation)


def _section(cls: type, values: dict[str, Any], name: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", key=f"{name}.{key}")
        kwargs[key] = _check_type(value, hints[key], f"{name}.{key}")
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`."""
    hints = typing.get_type_hints(Config)
    sections = {}
    for name, values in data.items():
        if name not in hints:
            raise ConfigError(f"unknown section (known: {', '.join(sorted(hints))})", key=name)
        if not isinstance(values, dict):
            raise ConfigError("expected a table of keys", key=name)
        sections[name] = _section(hints[name], values, name)
    config = Config(**sections)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    c = config
    if c.cluster.method not in ("kmeans", "agglomerative", "hdbscan"):
        raise ConfigError(f"expected kmeans, agglomerative or hdbscan, got {c.cluster.method!r}",
                          key="cluster.method")
    if c.cluster.refine not in ("none", "nb"):
        raise ConfigError(f"expected none or nb, got {c.cluster.refine!r}", key="cluster.refine")
    if isinstance(c.cluster.n_clusters, str) and c.cluster.n_clusters != "auto":
        raise ConfigError(f"expected \"auto\" or an integer, got {c.cluster.n_clusters!r}",
                          key="cluster.n_clusters")
    if isinstance(c.cluster.n_clusters, int) and c.cluster.n_clusters < 1:
        raise ConfigError("must be at least 1", key="cluster.n_clusters")
    if c.tag.min_confidence is not None and not 0.0 <= c.tag.min_confidence <= 1.0:
        raise ConfigError("must be between 0 and 1", key="tag.min_confidence")
    if not 0.0 <= c.compare.min_similarity <= 1.0:
        raise ConfigError("must be between 0 and 1", key="compare.min_similarity")
    if c.compare.size_tolerance < 0.0:
        raise ConfigError("must be 0 or more", key="compare.size_tolerance")
    if c.run.backend not in ("local", "dask"):
        raise ConfigError(f"expected local or dask, got {c.run.backend!r}", key="run.backend")
    if c.run.jobs < 0:
        raise ConfigError("must be 0 (all cores) or more", key="run.jobs")
    if c.run.overlap_min_articles < 0:
        raise ConfigError("must be 0 or more", key="run.overlap_min_articles")
    if c.vectorise.ngram_min < 1 or c.vectorise.ngram_max < c.vectorise.ngram_min:
        raise ConfigError("need 1 <= ngram_min <= ngram_max", key="vectorise.ngram_max")


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
