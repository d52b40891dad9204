"""Config loading: defaults, overrides, and errors that name the key."""
from __future__ import annotations

import pytest

from pipeline.config import DEFAULT_CONFIG, Config, load_config
from pipeline.errors import ConfigError


def test_default_file_matches_builtin_defaults() -> None:
    # configs/default.toml documents every key with its built-in default.
    assert load_config(DEFAULT_CONFIG) == Config()


def test_override_sets_typed_value() -> None:
    config = load_config(overrides=["cluster.n_clusters=7", "tag.min_confidence=0.3",
                                    "cluster.method=agglomerative"])
    assert config.cluster.n_clusters == 7
    assert config.tag.min_confidence == 0.3
    assert config.cluster.method == "agglomerative"


@pytest.mark.parametrize("override, key", [
    ("cluster.nclusters=3", "cluster.nclusters"),
    ("clusterx.n_clusters=3", "clusterx"),
    ("cluster.n_clusters=many", "cluster.n_clusters"),
    ("tag.min_confidence=2", "tag.min_confidence"),
    ("vectorise.sublinear_tf=3", "vectorise.sublinear_tf"),
    ("run.backend=spark", "run.backend"),
])
def test_bad_override_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[override])
    assert str(info.value).startswith(key + ":")


def test_unknown_key_in_file(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[tag]\nmin_confidance = 0.4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="tag.min_confidance"):
        load_config(path)


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
