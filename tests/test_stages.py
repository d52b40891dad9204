"""The stage protocol on the sample pages: the registry builds every stage from its config section,
``predict`` is pure and batch-independent, and ``set_annotations`` writes only its stage's fields."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.model_store import load_classifier
from pipeline.run import resolve_input_files
from pipeline.stages import REGISTRY, STAGE_NAMES, build_stages, stage_class

# the fields each stage may write onto an article (everything else is parse's)
WRITES = {
    "clean": {"tokens", "amounts"},
    "cluster": {"cluster", "cluster_terms", "cluster_score"},
    "tag": {"category", "confidence", "uncertain", "uncertain_reason", "label_source", "scores"},
}


@pytest.fixture(scope="module")
def stages(model_path: Path) -> list:
    return build_stages(load_config(), load_classifier(model_path))


@pytest.fixture(scope="module")
def parsed(stages: list) -> list:
    parse = stages[0]
    files = resolve_input_files(None)
    return list(parse.combine([parse.predict(files)], files).articles)


def _state(articles: list) -> list[dict]:
    return [a.to_dict() for a in articles]


def test_registry_is_in_run_order_and_names_match() -> None:
    assert STAGE_NAMES == ("parse", "clean", "vectorise", "cluster", "tag")
    for name in REGISTRY:
        cls = stage_class(name)
        assert cls.name == name
        assert isinstance(cls.corpus_wide, bool)
        earlier = set(STAGE_NAMES[:STAGE_NAMES.index(name)])
        assert set(cls.uses) <= earlier | {"classifier", "remote"}  # only earlier stages
        for method in ("predict", "set_annotations", "from_config"):
            assert callable(getattr(cls, method)), (name, method)


def test_built_stages_get_their_config_and_what_they_use(stages: list) -> None:
    config = load_config(None, ["cluster.n_clusters=4"])
    built = build_stages(config, "the classifier")
    by_name = {s.name: s for s in built}
    assert [s.name for s in built] == list(STAGE_NAMES)
    assert by_name["cluster"].vectorise is by_name["vectorise"]
    assert by_name["vectorise"].clean is by_name["clean"]
    assert by_name["tag"].classifier == "the classifier"
    assert by_name["cluster"].config.n_clusters == 4


def test_clean_and_tag_predict_are_pure_and_batch_independent(stages: list, parsed: list) -> None:
    clean, tag = stages[1], stages[4]
    clean.fit(parsed)
    before = _state(parsed)
    for stage in (clean, tag):
        whole = stage.predict(parsed)
        assert _state(parsed) == before  # predict changed no record
        halves = [stage.predict(parsed[:7]), stage.predict(parsed[7:])]
        per_item = [f.name for f in dataclasses.fields(whole) if f.name not in ("counts", "classes")]
        assert per_item
        for field in per_item:
            got = getattr(whole, field)
            if isinstance(got, np.ndarray):
                assert np.array_equal(np.concatenate([getattr(h, field) for h in halves]), got), field
            else:
                assert [x for half in halves for x in getattr(half, field)] == list(got), field


def test_set_annotations_writes_only_its_fields(stages: list, parsed: list) -> None:
    articles = copy.deepcopy(parsed)
    clean, vectorise, cluster, tag = stages[1:]
    clean.fit(articles)
    for stage in (clean, vectorise, cluster, tag):
        before = [a.to_dict() for a in articles]
        if stage.corpus_wide:
            columns = stage.fit_predict(articles) if hasattr(stage, "fit_predict") else (
                stage.fit(articles), stage.predict(articles))[1]
        else:
            columns = stage.predict(articles)
        counts = stage.set_annotations(articles, columns)
        assert isinstance(counts, dict)
        changed = {key for old, new in zip(before, (a.to_dict() for a in articles))
                   for key in new if old.get(key) != new[key]}
        assert changed <= WRITES.get(stage.name, set()), (stage.name, changed)
    assert all(a.category is not None and a.cluster is not None for a in articles)
