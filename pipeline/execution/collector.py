"""The cyclic garbage collector, kept off the records a run piles up (a speed device).

Why: parse and clean leave millions of small objects alive (articles, sources, token lists) that
form no reference cycles, so the collector's repeated full passes over them find nothing; they
were a fifth of the parse stage and a sixth of the clean stage. The runner switches it off for
each stage and, after the stages that create the long-lived records, moves everything alive
out of its reach (``gc.freeze``): its first pass afterwards would otherwise walk them all.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the collector for the block; re-enable it after only if it was enabled before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class QuietCollector:
    """The run's collector policy: :meth:`stage` pauses it for one stage, :meth:`freeze` moves
    what is alive now out of its reach; leaving the ``with`` block unfreezes everything.

    A caller that froze objects itself is left alone (nothing is frozen or unfrozen then), and
    ``enabled=False`` turns the device off (the benchmark measures the run without it).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._owns_freeze = False

    def __enter__(self) -> QuietCollector:
        self._owns_freeze = self.enabled and not gc.get_freeze_count()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_freeze:
            gc.unfreeze()

    @contextmanager
    def stage(self) -> Iterator[None]:
        """The collector off for one stage."""
        if not self.enabled:
            yield
            return
        with paused_gc():
            yield

    def freeze(self) -> None:
        """Everything alive now is left alone by later collections (until the run ends)."""
        if self._owns_freeze:
            gc.freeze()
