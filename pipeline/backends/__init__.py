"""Execution backends other than the in-process one (``run.backend``); imported lazily by ``run``.

``dask_backend`` runs the same stages partition by partition on a Dask cluster and needs the
``[dask]`` extra (``pip install -e ".[dask]"``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def split_even(items: Sequence[Any], n_parts: int) -> list[list[Any]]:
    """``items`` in ``n_parts`` contiguous, nearly equal, non-empty parts (order kept).

    Contiguous parts let every backend reassemble results in input order by concatenation.
    """
    n_parts = max(1, min(n_parts, len(items)))
    size, extra = divmod(len(items), n_parts)
    parts, start = [], 0
    for i in range(n_parts):
        end = start + size + (i < extra)
        parts.append(list(items[start:end]))
        start = end
    return parts

