"""The one loop: batch size does not change a byte, progress and counts add up, a later stage is
started in the background only beside a corpus-wide one, and an error cancels that work."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
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


class _Work:
    def __init__(self, fn: Any, batches: Sequence[Any], log: list[str], name: str) -> None:
        self.fn, self.batches, self.log, self.name = fn, batches, log, name
        self.failures: list[str] = []

    def results(self) -> Iterator[Any]:
        self.log.append(f"results {self.name}")
        return map(self.fn, self.batches)

    def cancel(self) -> None:
        self.log.append(f"cancel {self.name}")


class Ahead(Local):
    """A local executor that accepts background work (run when its results are asked for)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def start(self, stage: Any, fn: Any, batches: Sequence[Any]) -> _Work:
        self.log.append(f"start {stage.name}")
        return _Work(fn, batches, self.log, stage.name)


@pytest.fixture(scope="module")
def classifier(model_path: Path) -> Any:
    return load_classifier(model_path)


def _lines(result: Any) -> list[str]:
    return [a.to_json() for a in result.articles]


def test_batch_size_and_background_work_change_no_byte(classifier: Any, model_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    files = resolve_input_files(None)
    config = load_config()
    reference = run_stages(files, config, model_path, classifier, Local())
    monkeypatch.setattr(execution, "BATCH_ITEMS", 3)
    progress = Recording()
    ahead = Ahead()
    small = run_stages(files, config, model_path, classifier, ahead, progress)
    assert _lines(small) == _lines(reference)
    assert small.counts == reference.counts
    # tag was started when vectorise (corpus-wide) came next, and taken in at its turn
    assert ahead.log == ["start tag", "results tag"]
    assert "tag_wait" in small.timings
    n = len(small.articles)
    for stage in ("clean", "tag"):
        assert sum(c[2] for c in progress.calls if c[:2] == ("advance", stage)) == n
        assert len([c for c in progress.calls if c[:2] == ("advance", stage)]) == -(-n // 3)
    assert [c[1] for c in progress.calls if c[0] == "finish"] == ["parse", "clean", "vectorise",
                                                                   "cluster", "tag"]


def test_an_error_in_a_stage_cancels_the_background_work(classifier: Any, model_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cluster import ClusterStage

    def broken(self: Any, articles: Any) -> None:
        raise RuntimeError("cluster broke")

    monkeypatch.setattr(ClusterStage, "fit", broken)
    ahead = Ahead()
    with pytest.raises(RuntimeError, match="cluster broke"):
        run_stages(resolve_input_files(None), load_config(), model_path, classifier, ahead)
    assert ahead.log == ["start tag", "cancel tag"]


def test_add_counts_sums_numbers_and_nested_counts() -> None:
    total: dict[str, Any] = {}
    add_counts(total, {"a": 1, "by": {"x": 2}, "flag": True, "name": "n"})
    add_counts(total, {"a": 2.5, "by": {"x": 1, "y": 3}, "flag": False, "name": "m"})
    assert total == {"a": 3.5, "by": {"x": 3, "y": 3}, "flag": False, "name": "m"}
