"""The execution layer: every way the runner maps a stage's functions over batches, and all the
speed machinery, in one place.

Why one layer: the stages (:mod:`pipeline.stages`) are plain components that compute and write
fields; they never fork, never touch the garbage collector and never write files. How their
functions run -- in this process, in forked children that share the work, or on a Dask cluster --
is decided here, by an :class:`Executor`, and the runner (:mod:`pipeline.runner`) is the same
loop whichever one it is given. Each device below stays only while a benchmark shows it pays
(figures in ``benchmarks/README.md``, "Speed devices").

- :class:`Local` runs every batch in this process.
- :class:`Forked` shares the batches of the stages that are worth it between forked children and
  this process (:class:`~pipeline.execution.forked.SharedChunks`).
- :class:`~pipeline.execution.dask.DaskExecutor` maps batches over a Dask cluster.
- :class:`~pipeline.execution.collector.QuietCollector` keeps the cyclic garbage collector off
  the records a run piles up.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Items per batch where batches only bound memory and give progress (local runs).
BATCH_ITEMS = 10_000
# Devices switched off for measuring (benchmarks/run_scale.py --without): "collector",
# "fork:<stage>". Never changes an output, only how fast it comes.
DEVICES_OFF = frozenset(filter(None, os.environ.get("HSJ_DEVICES_OFF", "").split(",")))


def split_even(items: Sequence[Any], n_parts: int) -> list[list[Any]]:
    """``items`` in ``n_parts`` contiguous, nearly equal, non-empty parts (order kept).

    Contiguous parts let every executor reassemble results in input order by concatenation.
    """
    n_parts = max(1, min(n_parts, len(items)))
    size, extra = divmod(len(items), n_parts)
    parts, start = [], 0
    for i in range(n_parts):
        end = start + size + (i < extra)
        parts.append(list(items[start:end]))
        start = end
    return parts


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in contiguous slices of at most ``size`` (one empty batch for no items)."""
    size = max(1, size)
    return [items[i:i + size] for i in range(0, len(items), size)] or [items[:0]]


class Executor(Protocol):
    """How the runner maps a stage function over batches; results always come back in order."""

    name: str
    jobs: int

    def split(self, stage: Any, items: Sequence[T]) -> list[Sequence[T]]:
        """The batches ``items`` are cut into for ``stage`` (one for a corpus-wide stage)."""

    def map(self, stage: Any, fn: Callable[[Any], R], batches: Sequence[Any]) -> Iterator[R]:
        """``fn(batch)`` for every batch, in order (``fn`` is one of ``stage``'s methods)."""

    def describe(self) -> dict[str, Any] | None:
        """What ``run.json`` records of the executor (None for the local ones)."""


class Local:
    """Every batch in this process, in order. Batches only bound memory and give progress."""

    name = "local"
    remote = False

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = jobs
        self.notes: list[str] = []

    def split(self, stage: Any, items: Sequence[T]) -> list[Sequence[T]]:
        return [items] if stage.corpus_wide else chunks(items, BATCH_ITEMS)

    def map(self, stage: Any, fn: Callable[[Any], R], batches: Sequence[Any]) -> Iterator[R]:
        return map(fn, batches)

    def describe(self) -> dict[str, Any] | None:
        return None

    def libraries(self) -> dict[str, str | None]:
        return {}


class Forked(Local):
    """Batches shared between ``jobs - 1`` forked children and this process, for the stages
    and sizes where a benchmark showed it pays (``minimum``: the fewest items of each stage
    that are worth forking for; a stage not named always runs here).

    Children inherit the stage (its fitted state, spaCy, the classifier) and the batches at the
    fork, copy-on-write, and send back only results. A child that fails has its batches done
    here, and a line lands in :attr:`notes`. Where ``fork`` is missing everything runs here.
    """

    name = "forked"

    def __init__(self, jobs: int, minimum: dict[str, int]) -> None:
        super().__init__(jobs)
        self.minimum = minimum

    def _shares(self, stage: Any, n_items: int) -> bool:
        from .forked import can_fork

        least = self.minimum.get(stage.name)
        return (self.jobs > 1 and not stage.corpus_wide and least is not None and n_items >= least
                and can_fork())

    def split(self, stage: Any, items: Sequence[T]) -> list[Sequence[T]]:
        from .forked import SharedChunks

        if not self._shares(stage, len(items)):
            return super().split(stage, items)
        # small batches (up to SharedChunks.MAX_CHUNKS of them), as the forked stages had before
        # the refactor: each result is taken in while the others are made, and every process
        # ends within a small batch of the others
        return split_even(items, SharedChunks.MAX_CHUNKS)

    def map(self, stage: Any, fn: Callable[[Any], R], batches: Sequence[Any]) -> Iterator[R]:
        if len(batches) < 2 or not self._shares(stage, sum(map(len, batches))):
            return super().map(stage, fn, batches)
        return self._shared(stage, fn, batches)

    def _shared(self, stage: Any, fn: Callable[[Any], R], batches: Sequence[Any]) -> Iterator[R]:
        from .forked import SharedChunks

        shared = SharedChunks(len(batches), lambda i: fn(batches[i]), children=self.jobs - 1)
        yield from shared.in_order()
        self.notes.extend(f"{stage.name}: a forked worker failed, its share was done in the main "
                          f"process: {failure}" for failure in shared.failures)


def forked_minimums(clean_parallel_threshold: int, tag_parallel_threshold: int) -> dict[str, int]:
    """The fewest items of each stage worth sharing with forked children (measured: see
    ``benchmarks/README.md``): parse from 200 files (about 4,000 page slots); clean from
    ``clean.parallel_threshold`` texts (two per article); tag from ``tag.parallel_threshold``
    articles. A stage switched off with ``HSJ_DEVICES_OFF=fork:<stage>`` is never shared."""
    minimum = {"parse": 200, "clean": max(1, -(-clean_parallel_threshold // 2)),
               "tag": tag_parallel_threshold}
    return {stage: n for stage, n in minimum.items() if f"fork:{stage}" not in DEVICES_OFF}


def resolve_jobs(jobs: int) -> int:
    """``jobs`` worker processes; 0 means every core."""
    return jobs if jobs > 0 else (os.cpu_count() or 1)


def worker_name() -> str:
    """Where this code runs, for notes: the Dask worker's address, else "the client"."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "(not a worker)"
