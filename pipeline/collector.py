"""The cyclic garbage collector, paused while a stage piles up records.

Why: parse and clean each leave millions of small objects alive (articles, sources, token lists
and tuples) and make no reference cycles, so the collector's repeated full passes over them find
nothing; they were a fifth of the parse stage and a sixth of the clean stage.
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
