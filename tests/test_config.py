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


# ---- every key's type and range is declared once, in the section models -----------------------

import dataclasses  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tomllib  # noqa: E402

import annotated_types  # noqa: E402

from pipeline.config import SECTIONS  # noqa: E402
from tests.cli_helpers import one_line_error  # noqa: E402


def _bounds() -> list[tuple[str, object, object]]:
    """``(section.key, accepted bound, value just beyond it)`` for every bound of a numeric key."""
    cases = []
    for section, cls in SECTIONS.items():
        for name, info in cls.__pydantic_fields__.items():
            if info.annotation not in (int, float):
                continue
            step = 1 if info.annotation is int else 1e-6
            for m in info.metadata:
                key = f"{section}.{name}"
                if isinstance(m, annotated_types.Ge):
                    cases.append((key, m.ge, m.ge - step))
                elif isinstance(m, annotated_types.Le):
                    cases.append((key, m.le, m.le + step))
                elif isinstance(m, annotated_types.Gt):
                    cases.append((key, m.gt + step, m.gt))
                elif isinstance(m, annotated_types.Lt):
                    cases.append((key, m.lt - step, m.lt))
    return cases


BOUNDS = _bounds() + [("cluster.n_clusters", 1, 0)]  # an int or "auto": its int part


def test_every_numeric_key_has_a_lower_bound() -> None:
    numeric = {f"{s}.{n}" for s, cls in SECTIONS.items()
               for n, info in cls.__pydantic_fields__.items() if info.annotation in (int, float)}
    assert len(numeric) >= 25
    lower = {key for key, ok, bad in BOUNDS if bad < ok}
    assert numeric | {"cluster.n_clusters"} == lower


def _override(key: str, value: object) -> list[str]:
    """The override, plus what keeps cross-field checks satisfied at extreme values."""
    extra = {"vectorise.ngram_min": ["vectorise.ngram_max=10"],
             "cluster.min_clusters": ["cluster.max_clusters=10000"]}.get(key, [])
    return [f"{key}={value!r}", *extra]


@pytest.mark.parametrize("key, ok, bad", BOUNDS, ids=[f"{k}:{o}" for k, o, _ in BOUNDS])
def test_numeric_bounds_through_the_loader(key: str, ok: object, bad: object) -> None:
    section, name = key.split(".")
    assert getattr(getattr(load_config(overrides=_override(key, ok)), section), name) == ok
    with pytest.raises(ConfigError) as info:
        load_config(overrides=_override(key, bad))
    assert str(info.value).startswith(f"{key}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("setting, key", [
    ("cluster.random_state=-1", "cluster.random_state"),
    ("vectorise.headline_weight=-5", "vectorise.headline_weight"),
    ("cluster.random_state=4294967296", "cluster.random_state"),
    ("tag.min_confidence=1.01", "tag.min_confidence"),
    ("run.jobs=-1", "run.jobs"),
    ("cluster.n_clusters=0", "cluster.n_clusters"),
    ("cluster.min_clusters=40", "cluster.max_clusters"),
])
@pytest.mark.parametrize("command", ["run", "parse"])
def test_out_of_range_refused_through_the_cli(tmp_path, setting: str, key: str, command: str) -> None:
    args = ["--out", str(tmp_path / "out")] if command == "run" else \
        [str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o.jsonl")]
    done = subprocess.run([sys.executable, "-m", "pipeline", command, *args, "--set", setting],
                          capture_output=True, text=True)
    one_line_error(done, 3, f"error: {key}: ")
    assert not (tmp_path / "out").exists()


def test_file_value_checked_before_work(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[cluster]\nrandom_state = -1\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    one_line_error(done, 3, "cluster.random_state")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override, key, needle", [
    ("cluster.min_clusters=2.5", "cluster.min_clusters", "integer"),
    ("clean.repair=1", "clean.repair", "boolean"),
    ("parse.kickers=\"Exclusive\"", "parse.kickers", "list"),
    ("clean.phrases=[\"a\", 2]", "clean.phrases[1]", "string"),
    ("cluster.method=kmedoids", "cluster.method", "kmeans"),
    ("tag.min_confidance=0.5", "tag.min_confidance", "unknown key"),
])
def test_wrong_type_names_the_key(override: str, key: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=[override])
    assert str(info.value).startswith(f"{key}: ") and needle in str(info.value)


def test_default_toml_documents_exactly_the_model_defaults() -> None:
    # every key of every section is written out in configs/default.toml with the model's default;
    # a key whose default is None (TOML has no null) is documented as a commented-out line
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    assert set(raw) == set(SECTIONS)
    for section, cls in SECTIONS.items():
        unset = {f.name for f in dataclasses.fields(cls) if f.default is None}
        assert set(raw[section]) == {f.name for f in dataclasses.fields(cls)} - unset, section
        for name in unset:
            assert f"\n# {name} = " in text, f"{section}.{name} is not documented"
    assert load_config(DEFAULT_CONFIG).to_dict() == Config().to_dict()
    assert SECTIONS["cluster"](**raw["cluster"]) == Config().cluster


def test_a_renamed_key_names_its_new_name() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["run.overlap_min_articles=5"])
    assert str(info.value).endswith("run.overlap_min_articles: was renamed tag.parallel_threshold")
    assert load_config(None, ["tag.parallel_threshold=5"]).tag.parallel_threshold == 5
