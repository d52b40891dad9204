"""Dask worker preload for the tests (``dask worker --preload tests/dask_worker_view.py``): the
worker sees another filesystem than the client, as a worker on another machine would.

``HSJ_TEST_WORKER_VIEW`` holds ``client_dir=worker_dir`` pairs (separated by ``os.pathsep``): a
file the pipeline opens under ``client_dir`` is opened under ``worker_dir`` instead, so it is
missing (``worker_dir`` does not exist) or another file. Only this worker process is affected;
not a test module (pytest collects ``test_*.py``).
"""
from __future__ import annotations

import builtins
import os
from typing import Any

import pipeline.io

VIEW = [tuple(pair.split("=", 1)) for pair in os.environ.get("HSJ_TEST_WORKER_VIEW", "").split(os.pathsep)
        if "=" in pair]


def _as_seen_here(file: Any) -> Any:
    if isinstance(file, int):
        return file
    path = os.path.abspath(os.fspath(file))
    for client_dir, worker_dir in VIEW:
        if path.startswith(client_dir + os.sep):
            return worker_dir + path[len(client_dir):]
    return file


def _open(file: Any, *args: Any, **kwargs: Any) -> Any:
    return builtins.open(_as_seen_here(file), *args, **kwargs)


def _regular(path: Any) -> Any:
    return _real_open_regular(_as_seen_here(path))


# the preload may run more than once in a worker: keep the real function from the first time
_real_open_regular = pipeline.io.__dict__.setdefault("hsj_test_real_open_regular", pipeline.io.open_regular)
pipeline.io.open = _open  # any plain open in pipeline.io
pipeline.io.open_regular = _regular  # read_bytes and sha256_file open inputs through this name
