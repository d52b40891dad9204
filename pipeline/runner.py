"""The one loop that runs the stages: order, timing, progress, counts, notes and the manifest.

Every executor (:mod:`pipeline.execution`: local, forked, Dask) goes through this same loop;
they differ only in how a stage's functions are mapped over batches. For each stage, in the
registry's order (:mod:`pipeline.stages`):

1. the executor cuts the articles into batches (one for a corpus-wide stage);
2. the stage learns what it needs (``fit_predict`` of the one batch; else ``partial`` over the
   batches and ``combine``, or every item, then ``fit``);
3. the executor maps ``predict`` over the batches, and the results are written onto the records
   here, in order, by ``set_annotations``.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .config import Config
from .execution import DEVICES_OFF, Executor
from .execution.collector import QuietCollector
from .manifest import RunResult, counts_of, describe_parsed_inputs, finish_run
from .outputs import utc_now
from .parse import InputFile
from .stages import build_stages


class Progress(Protocol):
    """What a run reports while it works; the CLI implements it with rich progress bars."""

    def start(self, stage: str, total: int) -> None:
        """A stage begins with ``total`` units of work (articles, or files for parse)."""

    def advance(self, stage: str, amount: int) -> None:
        """``amount`` more units of the stage are done."""

    def finish(self, stage: str, seconds: float) -> None:
        """The stage is complete."""


class NoProgress:
    """The default :class:`Progress`: the library never prints."""

    def start(self, stage: str, total: int) -> None:  # noqa: D102 - protocol no-op
        pass

    def advance(self, stage: str, amount: int) -> None:  # noqa: D102
        pass

    def finish(self, stage: str, seconds: float) -> None:  # noqa: D102
        pass


def add_counts(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Sum a batch's counts into ``total`` (nested dicts summed key by key)."""
    for key, value in part.items():
        if isinstance(value, dict):
            add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value


def predictions(stage: Any, items: Sequence[Any], executor: Executor
                ) -> tuple[list[Sequence[Any]], Iterable[Any]]:
    """The stage's batches of ``items`` and their ``predict`` results (an iterator, in order),
    after the stage has learned what it needs from the corpus."""
    batches = executor.split(stage, items)
    if len(batches) == 1 and hasattr(stage, "fit_predict"):
        return batches, [stage.fit_predict(batches[0])]
    if hasattr(stage, "partial"):
        stage.fit(stage.combine(executor.map(stage, stage.partial, batches)))
    elif hasattr(stage, "fit"):
        stage.fit(items)
    return batches, executor.map(stage, stage.predict, batches)


def run_stages(files: list[InputFile], config: Config, model_path: Path, classifier: Any,
               executor: Executor, progress: Progress | None = None) -> RunResult:
    """Run every stage over the input ``files`` with ``executor``; the result and its manifest."""
    progress = progress or NoProgress()
    started = utc_now()
    timings: dict[str, float] = {}
    counts: dict[str, Any] = {}
    notes: list[str] = []
    parse, *stages = build_stages(config, classifier, remote=executor.remote)
    with QuietCollector(enabled="collector" not in DEVICES_OFF) as collector:
        # parse: the source of the records --------------------------------------------------------
        t0 = time.perf_counter()
        progress.start(parse.name, len(files))
        with collector.stage():
            batches = executor.split(parse, files)
            parsed = parse.combine(executor.map(parse, parse.predict, batches), files)
            collector.freeze()  # before the collector is back on: its first pass would walk them all
        articles, rejects = list(parsed.articles), list(parsed.rejects)
        counts[parse.name] = counts_of(parsed)
        notes.extend(f"{parse.name}: {n}" for n in parse.notes)
        progress.advance(parse.name, len(files))
        timings[parse.name] = time.perf_counter() - t0
        progress.finish(parse.name, timings[parse.name])
        inputs = [Path(f.name) for f in files]
        described = describe_parsed_inputs(parsed, inputs)

        products: dict[str, Any] = {}
        for stage in stages if articles else []:
            t0 = time.perf_counter()
            progress.start(stage.name, len(articles))
            with collector.stage():
                batches, results = predictions(stage, articles, executor)
                summed: dict[str, Any] = {}
                for batch, columns in zip(batches, results, strict=True):
                    add_counts(summed, stage.set_annotations(batch, columns))
                    progress.advance(stage.name, len(batch))
                collector.freeze()
            counts[stage.name] = {"articles": len(articles), **_optional(stage, "summary"), **summed}
            notes.extend(f"{stage.name}: {n}" for n in stage.notes)
            products.update(_optional(stage, "products"))
            timings[stage.name] = time.perf_counter() - t0
            progress.finish(stage.name, timings[stage.name])
        notes.extend(executor.notes)

    return finish_run(started, described, config, model_path, executor.jobs, inputs, articles, rejects,
                      products.get("clusters", []), counts, timings, notes, coords=products.get("coords"),
                      vectoriser=products.get("vectoriser"), extra_libraries=executor.libraries() or None,
                      backend=executor.describe())


def _optional(stage: Any, method: str) -> dict[str, Any]:
    """What an optional protocol method gives (``summary``, ``products``); empty without it."""
    found = getattr(stage, method, None)
    return found() if found is not None else {}
