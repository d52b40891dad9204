"""The one loop: batch size does not change a byte, progress and counts add up, and an error in a
stage ends the run with that error before any later stage starts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pipeline.execution as execution
from pipeline.config import load_config
from pipeline.execution import Local
from pipeline.model_store import load_classifier
from pipeline.run import resolve_input_files
from pipeline.runner import add_counts, run_stages


class Recording:
    """A progress sink that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self, stage: str, total: int) -> None:
        self.calls.append(("start", stage, total))

    def advance(self, stage: str, n: int) -> None:
        self.calls.append(("advance", stage, n))

    def finish(self, stage: str, seconds: float) -> None:
        self.calls.append(("finish", stage))


@pytest.fixture(scope="module")
def classifier(model_path: Path) -> Any:
    return load_classifier(model_path)


def _lines(result: Any) -> list[str]:
    return [a.to_json() for a in result.articles]


def test_batch_size_changes_no_byte_and_progress_adds_up(classifier: Any, model_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    files = resolve_input_files(None)
    config = load_config()
    reference = run_stages(files, config, model_path, classifier, Local())
    monkeypatch.setattr(execution, "BATCH_ITEMS", 3)
    progress = Recording()
    small = run_stages(files, config, model_path, classifier, Local(), progress)
    assert _lines(small) == _lines(reference)
    assert small.counts == reference.counts
    n = len(small.articles)
    for stage in ("clean", "tag"):
        advances = [c[2] for c in progress.calls if c[:2] == ("advance", stage)]
        assert sum(advances) == n and len(advances) == -(-n // 3)  # one advance per batch of 3
    assert [c[1] for c in progress.calls if c[0] == "finish"] == ["parse", "clean", "vectorise",
                                                                   "cluster", "tag"]


def test_an_error_in_a_stage_ends_the_run_before_later_stages(classifier: Any, model_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cluster import ClusterStage

    def broken(self: Any, articles: Any) -> None:
        raise RuntimeError("cluster broke")

    monkeypatch.setattr(ClusterStage, "fit", broken)
    progress = Recording()
    with pytest.raises(RuntimeError, match="cluster broke"):
        run_stages(resolve_input_files(None), load_config(), model_path, classifier, Local(), progress)
    assert [c[1] for c in progress.calls if c[0] == "start"] == ["parse", "clean", "vectorise", "cluster"]


def test_add_counts_sums_numbers_and_nested_counts() -> None:
    total: dict[str, Any] = {}
    add_counts(total, {"a": 1, "by": {"x": 2}, "flag": True, "name": "n"})
    add_counts(total, {"a": 2.5, "by": {"x": 1, "y": 3}, "flag": False, "name": "m"})
    assert total == {"a": 3.5, "by": {"x": 3, "y": 3}, "flag": False, "name": "m"}
